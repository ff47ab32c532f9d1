"""Modalities: how each kind of data becomes rows, model inputs and answers (see DataInfo)."""

from components.data.modalities.info import DataInfo
from components.data.modalities.tabular import tabular_info

__all__ = ["DataInfo", "tabular_info"]
