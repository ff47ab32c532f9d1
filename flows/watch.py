"""Watching the landing folder: an ingest pass whenever files arrive, until stopped.

File-system events come from `watchfiles` (inotify, FSEvents, ...); where those are not
available (some network and container file systems) the watcher polls instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from components.config import StreamConfig
from components.data.sources import HashCache
from flows.ingest import IngestReport, ingest
from flows.events import announce_new_data
from flows.workspace import Workspace

log = logging.getLogger(__name__)


def watch(
    ws: Workspace, on_pass: Callable[[IngestReport], None], stop: threading.Event | None = None
) -> IngestReport:
    """Ingest what has landed, then again each time files arrive or settle, until `stop` is
    set or a schema change stops the stream; returns the last pass's report."""
    stop = stop or threading.Event()
    ws.landing.mkdir(parents=True, exist_ok=True)
    hashes = HashCache()  # a pass hashes only files that changed since the one before
    report = _pass(ws, hashes, on_pass)
    for changed in _wakeups(ws, ws.config.stream, stop):
        if report.stopped:
            break
        # Files too fresh to be complete are looked at again on each tick until they settle.
        if changed or report.waiting:
            report = _pass(ws, hashes, on_pass)
    return report


def _pass(ws: Workspace, hashes: HashCache, on_pass: Callable[[IngestReport], None]) -> IngestReport:
    report = ingest(ws, hashes, wait_to_settle=False)
    if report.batches:  # a pipeline scheduled `on_new_data` runs now
        announce_new_data(ws.name, report.bronze_version, report.good_rows)
    on_pass(report)
    return report


def _wakeups(ws: Workspace, stream: StreamConfig, stop: threading.Event) -> Iterator[bool]:
    """True when files changed, False on a quiet tick every `poll_seconds`."""
    if stream.watcher != "poll":
        try:
            import watchfiles

            for changes in watchfiles.watch(
                ws.landing, stop_event=stop, rust_timeout=int(stream.poll_seconds * 1000),
                yield_on_timeout=True, debounce=200, step=50,
            ):
                yield bool(changes)
            return
        except OSError as exc:
            if stream.watcher == "notify":
                raise
            log.warning("file-system events unavailable (%s); polling every %ss", exc, stream.poll_seconds)
    while not stop.wait(stream.poll_seconds):
        yield True
