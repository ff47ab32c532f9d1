"""What a person running `rayline` sees.

The libraries' logs (Prefect, Ray, Ray Data, Tune, Serve, MLflow, and anything their
processes write to stderr) go to a file under `.rayline/logs/`, whose path is printed
first: the process's stderr is pointed at that file, so even the lines native code and
child processes write land there. The console keeps the CLI's own lines: a live status
line with the stage and its latest news, trials as they finish, and the summary tables.
`--verbose` leaves stderr alone, so everything shows as it comes.

An expected condition is one line (`error`); an unexpected failure is one line naming the
log file, which holds the traceback (`crashed`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.status import Status

LOG_DIR = Path(".rayline/logs")

_stderr: TextIO | None = None  # the terminal's stderr, kept once stderr goes to the log
_log_file: Path | None = None
_status: Status | None = None
_console = Console(highlight=False)


def start(command: str, verbose: bool) -> Path | None:
    """Send the libraries' output to a new log file (unless `verbose`) and start the status line."""
    global _stderr, _log_file, _status
    if _log_file is not None or verbose:
        return _log_file
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    path = LOG_DIR / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    sys.stderr.flush()
    _stderr = os.fdopen(os.dup(2), "w", buffering=1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)  # child processes (Prefect's API server, Ray's) inherit it too
    os.close(fd)
    _log_file = path.resolve()
    logging.getLogger().setLevel(logging.INFO)
    # Tune's newer console reporter prints its experiment header even when silent.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    _console.print(f"logs: {_log_file}", style="dim", markup=False, highlight=False, soft_wrap=True)
    _status = _console.status("starting", spinner="dots")
    _status.start()
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addHandler(_StageHandler())
    return _log_file


def stop() -> None:
    """End the status line (before tables are printed, and at exit)."""
    global _status
    if _status is not None:
        _status.stop()
        _status = None


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Lines the libraries print to stdout meanwhile (Ray's on shutdown) go to the log."""
    if _log_file is None:
        yield
        return
    with redirect_stdout(sys.stderr):
        yield


def update(text: str) -> None:
    if _status is not None:
        _status.update(text)


def say(text: str) -> None:
    """A line that stays above the status line (plain text: brackets are not markup)."""
    _console.print(text, highlight=False, markup=False, soft_wrap=True)


def error(message: str) -> None:
    """An expected condition, in one line on the terminal's stderr."""
    stop()
    print(message, file=_stderr or sys.stderr, flush=True)


def crashed(exc: BaseException) -> None:
    """An unexpected failure: the traceback to the log, one line to the terminal."""
    stop()
    if _log_file is None:
        traceback.print_exception(exc)
        return
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()
    print(f"rayline: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
          f"\n  the traceback is in {_log_file}", file=_stderr, flush=True)


class _StageHandler(logging.Handler):
    """Prefect's flow and task run records become the status line: `stage · news`."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stage = ""

    def emit(self, record: logging.LogRecord) -> None:
        flow = getattr(record, "flow_name", None)
        if flow and flow != "pipeline":
            self.stage = flow
        line = record.getMessage().strip().splitlines()[0] if record.getMessage().strip() else ""
        task = getattr(record, "task_name", None)
        update(f"[bold]{self.stage or flow or 'rayline'}[/bold] · {escape(f'{task}: ' if task else '')}{escape(line[:140])}")


def tune_callbacks(total: int) -> list[Any]:
    """Tune callbacks that show each trial's epochs on the status line and a line per
    finished trial, of `total`; none when nothing is shown (verbose: Tune prints its own table)."""
    if _status is None:
        return []
    from ray import tune

    class TrialProgress(tune.Callback):
        done = 0

        def on_trial_result(self, iteration, trials, trial, result, **info):  # noqa: ANN001 - Tune's signature
            shown = _metrics(result)
            update(f"[bold]tune[/bold] · trial {trial.trial_id} epoch {result.get('training_iteration')}: {shown}")

        def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ANN001
            self.done += 1
            result = trial.last_result or {}
            say(f"  trial {self.done}/{total} {trial.trial_id}: {result.get('training_iteration', '?')} epoch(s), "
                f"{_metrics(result)}")

        def on_trial_error(self, iteration, trials, trial, **info):  # noqa: ANN001
            say(f"  trial {trial.trial_id} failed (details in the log)")

    return [TrialProgress()]


def _metrics(result: dict[str, Any]) -> str:
    keys = [k for k in ("val_loss", "val_accuracy", "val_rmse", "train_loss") if isinstance(result.get(k), (int, float))]
    return ", ".join(f"{k}={result[k]:.4g}" for k in keys[:3]) or "-"
