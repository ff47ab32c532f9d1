"""Rich tables for the terminal: the pipeline's run summary and scored predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from rich.console import Console
from rich.table import Table

from flows import console

if TYPE_CHECKING:  # importing them imports Prefect: commands that print tables without it stay light
    from flows.ingest import IngestReport
    from flows.pipeline import PipelineSummary


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def ingest_line(report: IngestReport) -> str:
    """One line for an ingest pass: what was committed, skipped, left behind."""
    line = f"{report.good_rows} new rows, {report.bad_rows} quarantined"
    if report.batches:
        first, last = report.batches[0].batch, report.batches[-1].batch
        span = f"batch {first}" if first == last else f"batches {first}-{last}"
        line += f" ({report.files} file(s), {span}, bronze v{report.bronze_version})"
    line += f", {report.already} file(s) already ingested"
    if report.duplicates:
        line += f", {len(report.duplicates)} duplicate(s) skipped"
    line += f", {len(report.failed)} failed"
    if report.waiting:
        line += f", {len(report.waiting)} still being written"
    return line


def summary_table(summary: PipelineSummary) -> Table:
    table = Table(title=f"rayline pipeline '{summary.name}'", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    if summary.ingest is not None:
        ing = summary.ingest
        table.add_row("ingest", ingest_line(ing))
        for name, why in ing.failed.items():
            table.add_row("  failed file", f"{name}: {why}")
        if ing.stopped:
            table.add_row("  stopped", ing.stopped)
    if summary.skipped:
        table.add_row("train", summary.skipped)
    if summary.fit is not None:
        fit = summary.fit
        lineage = fit.snapshot.lineage
        silver = ", ".join(f"{s} v{t['version']}" for s, t in lineage["silver"].items())
        table.add_row("data versions", f"bronze v{lineage['bronze_version']}; silver {silver}")
        table.add_row("trials", f"{len(fit.outcomes)} ({sum(o.error is not None for o in fit.outcomes)} failed)")
        if fit.best.params:
            table.add_row("best params", ", ".join(f"{k}={_fmt(v)}" for k, v in fit.best.params.items()))
        reg = fit.registration
        table.add_row(f"validation {reg.metric}", _fmt(reg.value))
        # Averages here; the per-class numbers (test_precision.<label>, ...) are in MLflow.
        tests = {k.removeprefix("test_"): v for k, v in fit.metrics.items() if k.startswith("test_") and "." not in k}
        table.add_row("test metrics", ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(tests.items())))
        robust = _robust(fit.metrics)
        if robust:
            table.add_row("under attack (test)", robust)
        for gate in reg.gates:
            table.add_row("gate", gate.describe())
        table.add_row("model", f"{reg.name} v{reg.version}, {_champion(reg)}")
        table.add_row("mlflow run", fit.parent_run_id)
    if summary.endpoint:
        name = summary.fit.registration.name if summary.fit else summary.name
        table.add_row("endpoint", f"{summary.endpoint}/v1/models/{name}:predict")
    elif summary.fit is not None and not summary.fit.registration.has_champion:
        table.add_row("endpoint", "not deployed: no version is champion")
    if summary.seconds:
        table.add_row("seconds", ", ".join(f"{k} {v:.1f}" for k, v in summary.seconds.items()))
    return table


def _champion(reg: Any) -> str:
    if reg.champion:
        return "champion"
    stays = f"v{reg.previous_champion} stays" if reg.previous_champion else "no champion yet"
    failed = reg.failed_gates
    if failed:
        return f"not champion: gate {failed[0].describe()}" + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else "") + f"; {stays}"
    return f"not champion ({stays})"


def _robust(metrics: dict[str, float]) -> str:
    """`fgsm eps 0.05=0.91, 0.1=0.62; pgd eps ...` from test_<attack>_accuracy.eps_<eps> metrics."""
    by_attack: dict[str, list[str]] = {}
    for key, value in metrics.items():
        attack, sep, eps = key.removeprefix("test_").partition("_accuracy.eps_")
        if key.startswith("test_") and sep:
            by_attack.setdefault(attack, []).append(f"{eps}={_fmt(value)}")
    return "; ".join(f"{attack} accuracy at eps {', '.join(parts)}" for attack, parts in by_attack.items())


def leaderboard_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="leaderboard (validation)", title_justify="left")
    for column in rows[0] if rows else []:
        table.add_column(column)
    for row in rows:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in row["params"].items()) or "-"
        table.add_row(*(params if k == "params" else _fmt(v) for k, v in row.items()))
    return table


def predictions_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in rows[0] if rows else []:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    return table


def lr_sweep_table(result: Any, rows: int = 12) -> Table:
    """A dozen points of the learning-rate range test."""
    table = Table(title="learning-rate range test (smoothed training loss)", title_justify="left")
    table.add_column("learning rate")
    table.add_column("loss")
    every = max(1, len(result.lrs) // rows)
    for lr, loss in list(zip(result.lrs, result.losses))[::every]:
        table.add_row(f"{lr:.2e}", _fmt(loss))
    return table


def lr_sweep_line(result: Any, run_id: str) -> str:
    return (
        f"suggested learning rate {result.suggested_lr:.2e} (steepest descent; min-loss/10 rule: "
        f"{result.min_loss_lr:.2e}); {'stopped when the loss diverged' if result.stopped_early else 'ran every step'}; "
        f"plot: report/lr_sweep.png in MLflow run {run_id}"
    )


def history_table(history: pl.DataFrame, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("version", "time", "operation", "rows added", "files added", "files removed"):
        table.add_column(column, justify="right" if column != "operation" else "left")
    for row in history.iter_rows():
        version, time, operation, *counts = row
        table.add_row(str(version), time.strftime("%Y-%m-%d %H:%M:%S"), operation, *["" if c is None else str(c) for c in counts])
    return table


def run_lineage_table(run: Any) -> Table:
    """`rayline runs show`: one row per system that saw the run."""
    from datetime import datetime, timezone

    table = Table(title=f"run {run.run_id}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    started = datetime.fromtimestamp(run.started_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    table.add_row("pipeline", f"{run.pipeline}: {run.run_name}, {run.status.lower()}, started {started}")
    table.add_row("prefect flow run", run.prefect_flow_run or "-")
    table.add_row("mlflow run", f"{run.run_id} ({run.trials} trial run(s))")
    table.add_row("ray tune experiment", run.tune_experiment or "-")
    if run.model:
        data = run.data
        silver = ", ".join(f"{s} v{t['version']}" for s, t in data.get("silver", {}).items())
        table.add_row("model version", f"{run.model} v{run.version} (trial run {run.chosen_trial_run})")
        table.add_row("data versions", f"bronze v{data.get('bronze_version')}; silver {silver}")
        table.add_row("config / code", f"config {data.get('config_hash')}, code {data.get('code_version')}")
        serving = run.serving_version
        table.add_row("served", "no champion" if serving is None else (
            "this version is champion" if serving == run.version else f"champion is v{serving}"))
    else:
        table.add_row("model version", "none registered by this run")
    return table


def drift_table(result: Any) -> Table:
    """`rayline monitor`: one row per feature and one for the answers, drifted ones in red."""
    report = result.report
    table = Table(
        title=f"{result.name} v{result.version}: {result.rows} logged rows ({result.window}) against the training reference",
        title_justify="left",
    )
    for column in ("feature", "kind", "test", "value", "threshold", "psi", "ks", "wasserstein", "js", "drift"):
        table.add_column(column, justify="left" if column in ("feature", "kind", "test", "drift") else "right")
    for f in [*report.features, *([report.prediction] if report.prediction else [])]:
        stats = f.statistics
        row = [f.feature, f.kind, f.test, _fmt(f.value), _fmt(f.threshold)]
        row += [_fmt(stats[k]) if k in stats else "" for k in ("psi", "ks", "wasserstein", "js")]
        row.append("[bold red]drifted[/bold red]" if f.drifted else "stable")
        table.add_row(*row, style="red" if f.drifted else None)
    return table


def show(renderable: Any) -> None:
    console.stop()  # the tables come after the live status line, not inside it
    Console().print(renderable)
