"""Training tasks by name; a model kind says which one trains it (`components.models.training_task`)."""

from components.training.tasks.base import Batch, TrainingTask
from components.training.tasks.glove import GloVeTask
from components.training.tasks.language_model import LanguageModel
from components.training.tasks.metric_learning import MetricLearning
from components.training.tasks.seq2seq import Seq2SeqTask
from components.training.tasks.supervised import Supervised
from components.training.tasks.tagging import Tagging
from components.training.tasks.word_embeddings import WordEmbeddings

TASKS: dict[str, type[TrainingTask]] = {
    "supervised": Supervised, "metric_learning": MetricLearning, "tagging": Tagging, "language_model": LanguageModel,
    "seq2seq": Seq2SeqTask, "word_embeddings": WordEmbeddings, "glove": GloVeTask,
}


def task_class(name: str) -> type[TrainingTask]:
    if name not in TASKS:
        raise ValueError(f"unknown training task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name]


__all__ = ["Batch", "GloVeTask", "LanguageModel", "MetricLearning", "Seq2SeqTask", "TASKS", "Supervised", "Tagging", "TrainingTask", "WordEmbeddings",
           "task_class"]
