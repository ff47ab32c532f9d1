"""Models selectable by `model.kind` in a pipeline config.

Importing this package imports every model module, so each registers its kind.
"""

from components.models.registry import (
    DATA_FIELDS, WORD_VECTOR_TASKS, Family, build, config_fields, data_fields, family, is_estimator, kinds, make_config, register,
    register_estimator, training_task,
)
from components.models import boosting, cnn, ensemble, estimators, linear, mlp, rnn, seq2seq, siamese, tagger, word2vec, glove  # noqa: F401  (modules register their kinds on import)

__all__ = [
    "DATA_FIELDS", "WORD_VECTOR_TASKS", "Family", "build", "config_fields", "data_fields", "family", "is_estimator", "kinds", "make_config",
    "register", "register_estimator", "training_task",
]
