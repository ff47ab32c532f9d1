"""Models selectable by `model.kind` in a pipeline config.

Importing this package imports every model module, so each registers its kind.
"""

from components.models.registry import Family, build, family, is_estimator, kinds, register, register_estimator
from components.models import boosting, ensemble, estimators, linear, mlp  # noqa: F401  (modules register their kinds on import)

__all__ = ["Family", "build", "family", "is_estimator", "kinds", "register", "register_estimator"]
