"""The inference recorder of a served model: where its log lives and how it is fed."""

from __future__ import annotations

from components.config import RecorderConfig
from components.data.inference_log import InferenceRecorder, lake_writer
from components.data.lake import Lake


def open_recorder(name: str, version: str, lake_root: str | None, config: RecorderConfig | None) -> InferenceRecorder | None:
    """A recorder writing to `{lake_root}/{name}`'s inference log (beside the tables `rayline
    score` writes for the model), or None when recording is off."""
    if lake_root is None or config is None or not config.enabled:
        return None
    return InferenceRecorder(
        lake_writer(Lake(f"{lake_root}/{name}"), config.compact_every),
        version,
        sample_rate=config.sample_rate,
        max_queued_rows=config.max_queued_rows,
        flush_rows=config.flush_rows,
        flush_seconds=config.flush_seconds,
    )
