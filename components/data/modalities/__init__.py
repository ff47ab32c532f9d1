"""Modalities: how each kind of data becomes rows, model inputs and answers (see DataInfo)."""

from components.data.modalities.info import DataInfo

__all__ = ["DataInfo"]
