"""The `rayline` command line: one command per stage, the whole pipeline, serving, scoring."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import polars as pl
import typer

from components.config import ConfigError, load_profile
from components.config_check import load_checked
from flows import console, ensure_prefect_home
from flows.workspace import Workspace, conf_dir_of

if TYPE_CHECKING:
    from components.data.word_vectors import WordVectors

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)

ConfigArg = Annotated[Path, typer.Argument(help="pipeline YAML, e.g. conf/pipelines/quickstart.yaml")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="show the libraries' logs here instead of in .rayline/logs/")]
DataVersion = Annotated[Optional[int], typer.Option("--data-version", help="train on this bronze version (see `rayline lake history`)")]


def main() -> None:
    """The `rayline` command: an unexpected failure is one line naming the log with its traceback."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - the last stop: say it in one line, keep the details
        console.crashed(exc)
        sys.exit(1)
    finally:
        console.stop()


def _workspace(path: Path, command: str, verbose: bool) -> Workspace:
    """Load and validate everything first: a bad config exits 2 before anything runs; then
    the libraries' logs go to a file."""
    try:
        ws = Workspace.of(load_checked(path), conf_dir_of(path))
    except ConfigError as exc:
        console.error(str(exc))
        raise typer.Exit(2) from None
    ensure_prefect_home()
    console.start(command, verbose)
    return ws


def _require_init_source(ws: Workspace) -> None:
    """model.init_from must name a registered version before anything runs."""
    init = ws.config.model.init_from
    if init is None or init.version is not None:
        return
    from components.artifacts.registry import CHAMPION, resolve_version

    try:
        resolve_version(ws.profile.mlflow_tracking_uri, init.model, init.alias or CHAMPION)
    except LookupError as exc:
        console.error(f"model.init_from: {exc}; train and register {init.model!r} first")
        raise typer.Exit(1) from None


def _require_free_port(ray_address: str | None, host: str, port: int, setting: str) -> None:
    """A local endpoint needs its port: say so in one line before anything runs."""
    import socket

    if ray_address:
        return  # the cluster's proxies hold the port, not this machine
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            console.error(f"port {port} on {host} is in use: stop what holds it or choose another ({setting})")
            raise typer.Exit(1) from None


@app.command()
def run(
    config: ConfigArg,
    smoke: Annotated[int, typer.Option(help="send N test rows to the endpoint, print them, then stop")] = 0,
    serve: Annotated[bool, typer.Option(help="deploy the endpoint at the end")] = True,
    data_version: DataVersion = None,
    force: Annotated[bool, typer.Option(help="train even when nothing changed since the newest model version")] = False,
    verbose: Verbose = False,
) -> None:
    """The whole pipeline: ingest, preprocess, tune or train, evaluate, register, deploy."""
    ws = _workspace(config, "run", verbose)
    if serve:
        _require_free_port(ws.profile.ray_address, ws.config.serving.host, ws.config.serving.port, "serving.port")
    _require_init_source(ws)
    from flows.pipeline import pipeline
    from flows.summary import leaderboard_table, show, summary_table

    try:
        summary = pipeline(ws, serve=serve, data_version=data_version, force=force)
    except LookupError as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None
    if summary.fit is not None and len(summary.fit.leaderboard) > 1:
        show(leaderboard_table(summary.fit.leaderboard))
    show(summary_table(summary))
    if summary.ingest is not None and summary.ingest.stopped:
        console.error(f"stopped after ingest: {summary.ingest.stopped}")
        raise typer.Exit(1)
    if summary.endpoint and smoke:
        _smoke(ws, summary.endpoint, smoke)
        _shutdown()
    elif summary.endpoint:
        _serve_forever(ws.profile.ray_address, summary.endpoint)
    elif serve:
        _shutdown()
        console.error(f"{ws.config.serving.name}: no version is champion, nothing to serve")
        raise typer.Exit(1)


@app.command()
def ingest(
    config: ConfigArg,
    watch: Annotated[bool, typer.Option(help="keep ingesting as files arrive, until Ctrl-C")] = False,
    verbose: Verbose = False,
) -> None:
    """Landing files -> bronze Delta table (bad rows -> quarantine), in micro-batches
    committed exactly once; `--watch` keeps going as files arrive."""
    ws = _workspace(config, "ingest", verbose)
    from components.data.lake import LakeBusyError
    from flows.summary import ingest_line

    try:
        if watch:
            report = _watch(ws)
        else:
            from flows.ingest import ingest as ingest_flow

            report = ingest_flow(ws)
            console.say(f"{ws.name}: {ingest_line(report)}")
    except LakeBusyError as exc:
        console.error(f"{exc}; is `rayline ingest --watch` running for {ws.name}?")
        raise typer.Exit(1) from None
    if not watch:
        _echo_problems(report, set())
    # A watcher reports failed files as it meets them and keeps going; only a stop is an error.
    if report.stopped or (report.failed and not watch):
        raise typer.Exit(1)


def _echo_problems(report, shown: set[tuple[str, str]], duplicates: bool = False) -> None:
    for name, why in report.failed.items():
        if (name, why) not in shown:
            shown.add((name, why))
            console.error(f"left {name} in the landing folder: {why}")
    for name, original in report.duplicates.items() if duplicates else ():
        if (name, original) not in shown:
            shown.add((name, original))
            console.say(f"skipped {name}: the same bytes as {original}, already ingested")
    if report.stopped:
        console.error(f"stopped: {report.stopped}")


def _watch(ws: Workspace):
    """Ingest passes until Ctrl-C or SIGTERM; one line per pass that committed something."""
    import threading

    from flows.summary import ingest_line
    from flows.watch import watch as watch_flow

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.say(f"watching {ws.landing} (Ctrl-C to stop)")
    shown: set[tuple[str, str]] = set()

    def on_pass(report) -> None:
        if report.batches:
            console.say(f"{time.strftime('%H:%M:%S')} {ingest_line(report)}")
        _echo_problems(report, shown, duplicates=True)

    report = watch_flow(ws, on_pass, stop)
    console.say("stopped watching")
    return report


@app.command()
def preprocess(config: ConfigArg, data_version: DataVersion = None, verbose: Verbose = False) -> None:
    """Bronze -> seeded splits -> fitted transforms -> silver Delta tables."""
    ws = _workspace(config, "preprocess", verbose)
    from flows.preprocess import preprocess as preprocess_flow

    try:
        preprocess_flow(ws, data_version)
    except LookupError as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None


@app.command()
def train(config: ConfigArg, data_version: DataVersion = None, verbose: Verbose = False) -> None:
    """Train once with Ray Train on the silver tables, then evaluate and register."""
    _fit(config, search=False, verbose=verbose, data_version=data_version)


@app.command()
def tune(config: ConfigArg, data_version: DataVersion = None, verbose: Verbose = False) -> None:
    """Search the config's space with Ray Tune, then evaluate and register the best trial."""
    _fit(config, search=True, verbose=verbose, data_version=data_version)


def _fit(config: Path, search: bool, verbose: bool, data_version: int | None) -> None:
    """Train or tune on the last preprocessed split, or first on bronze at `data_version`."""
    ws = _workspace(config, "tune" if search else "train", verbose)
    _require_init_source(ws)
    if search and ws.config.tuning is None:
        console.error(f"{config}: no 'tuning' section to search; use `rayline train`")
        raise typer.Exit(2)
    from flows.pipeline import PipelineSummary, fit
    from flows.summary import leaderboard_table, show, summary_table

    try:
        if data_version is not None:
            from flows.preprocess import preprocess as preprocess_flow

            preprocess_flow(ws, data_version)
    except LookupError as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None
    result = fit(ws, search)
    if len(result.leaderboard) > 1:
        show(leaderboard_table(result.leaderboard))
    show(summary_table(PipelineSummary(ws.name, fit=result)))


@app.command("lr-sweep")
def lr_sweep(
    config: ConfigArg,
    start: Annotated[float, typer.Option(help="first learning rate")] = 1e-5,
    end: Annotated[float, typer.Option(help="last learning rate")] = 10.0,
    steps: Annotated[int, typer.Option(help="optimiser steps, rates spaced geometrically")] = 100,
    verbose: Verbose = False,
) -> None:
    """Learning-rate range test on the preprocessed training split: loss against rate,
    a plot in MLflow and a suggested rate (run ingest and preprocess first)."""
    ws = _workspace(config, "lr-sweep", verbose)
    if not (0 < start < end) or steps < 2:
        console.error(f"--start must be > 0 and below --end, and --steps >= 2; got {start}, {end}, {steps}")
        raise typer.Exit(2)
    from flows.lr_sweep import lr_sweep as sweep_flow
    from flows.summary import lr_sweep_line, lr_sweep_table, show

    try:
        result, run_id = sweep_flow(ws, start, end, steps)
    except (LookupError, ValueError) as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None
    show(lr_sweep_table(result))
    console.say(lr_sweep_line(result, run_id))


@app.command()
def deploy(config: ConfigArg, verbose: Verbose = False) -> None:
    """Deploy the config's model (its `champion` version) on Ray Serve."""
    ws = _workspace(config, "deploy", verbose)
    _require_free_port(ws.profile.ray_address, ws.config.serving.host, ws.config.serving.port, "serving.port")
    from flows.deploy import deploy as deploy_flow

    url = deploy_flow(ws)
    console.say(f"serving {ws.config.serving.name} at {url}")
    _serve_forever(ws.profile.ray_address, url)


@app.command()
def serve(
    model: Annotated[Optional[list[str]], typer.Option(help="registered model to serve (repeatable); default: all with a champion")] = None,
    profile: Annotated[str, typer.Option(help="conf/profiles/NAME.yaml")] = "local",
    host: str = "127.0.0.1",
    port: int = 8000,
    verbose: Verbose = False,
) -> None:
    """Serve registered champions in the foreground until Ctrl-C."""
    try:
        prof = load_profile(profile)
    except ConfigError as exc:
        console.error(str(exc))
        raise typer.Exit(2) from None
    _require_free_port(prof.ray_address, host, port, "--port")
    ensure_prefect_home()
    console.start("serve", verbose)
    from components.artifacts.registry import champions
    from flows.deploy import start_endpoint, wait_ready
    from serving.app import ServedModel

    names = model or champions(prof.mlflow_tracking_uri)
    if not names:
        console.error(f"no registered model has a champion in {prof.mlflow_tracking_uri}; run a pipeline first")
        raise typer.Exit(1)
    url = start_endpoint.fn(prof, [ServedModel(name=n) for n in names], host, port)
    wait_ready.fn(url, names)
    console.say(f"serving {', '.join(names)} at {url}")
    _serve_forever(prof.ray_address, url)


@app.command()
def score(
    name: Annotated[str, typer.Argument(help="registered model name")],
    input: Annotated[str, typer.Option("--input", help="a table of the model's lake (e.g. bronze), a Delta table path, or .csv/.parquet/.ndjson files (a file or a folder)")],
    output: Annotated[str, typer.Option("--output", help="table in the model's lake to append predictions to")],
    version: Annotated[Optional[str], typer.Option(help="model version (default: the alias)")] = None,
    alias: str = "champion",
    actors: Annotated[int, typer.Option(help="most scoring actors (each loads the bundle once)")] = 2,
    profile: Annotated[str, typer.Option(help="conf/profiles/NAME.yaml")] = "local",
    verbose: Verbose = False,
) -> None:
    """Score a table or files with a registered model through Ray Data, no HTTP; the answers
    are appended to a Delta table with the model version and the input's version."""
    try:
        prof = load_profile(profile)
    except ConfigError as exc:
        console.error(str(exc))
        raise typer.Exit(2) from None
    if actors < 1:
        console.error(f"--actors must be >= 1, got {actors}")
        raise typer.Exit(2)
    ensure_prefect_home()
    console.start("score", verbose)
    from components.data.schema import SchemaError
    from flows.score import score as score_flow

    try:
        report = score_flow(prof, name, input, output, version, alias, actors)
    except (LookupError, SchemaError, ValueError, FileNotFoundError) as exc:
        console.error(_first_line(exc))
        raise typer.Exit(1) from None
    finally:
        _shutdown()
    rate = report.rows / report.seconds if report.seconds else 0.0
    console.say(
        f"{name} v{report.version}: {report.rows} rows scored ({rate:,.0f} rows/s), {report.rejected} rejected; "
        f"input {report.source}" + (f" v{report.input_version}" if report.input_version is not None else "")
        + f" -> {report.output}" + (f" v{report.output_version}" if report.output_version is not None else "")
    )


@app.command()
def monitor(
    name: Annotated[str, typer.Argument(help="registered (and served) model name")],
    config: Annotated[Optional[Path], typer.Option(help="the model's pipeline YAML: its `monitoring:` settings and profile")] = None,
    window: Annotated[Optional[str], typer.Option(help="logged rows of the last 30m, 1h, 7d ..., or all (default: monitoring.window)")] = None,
    version: Annotated[Optional[str], typer.Option(help="model version whose reference to compare with (default: the alias)")] = None,
    alias: str = "champion",
    profile: Annotated[str, typer.Option(help="conf/profiles/NAME.yaml (without --config)")] = "local",
    fail_on_drift: Annotated[bool, typer.Option(help="exit 3 when the data drifted")] = False,
    verbose: Verbose = False,
) -> None:
    """Compare what the endpoint answered (its inference log) with the training reference
    of the served version: drift per feature and of the answers, a table here and a report
    (metrics, JSON, plots) in MLflow; under `rayline schedule --on-drift`, drift retrains."""
    from components.config import MonitoringConfig, parse_window

    if config is not None:
        ws = _workspace(config, "monitor", verbose)
        prof, settings = ws.profile, ws.config.monitoring
    else:
        prof, settings = _profile(profile), MonitoringConfig()
        ensure_prefect_home()
        console.start("monitor", verbose)
    if window is not None:
        try:
            parse_window(window)
        except ValueError as exc:
            console.error(f"--window: {exc}")
            raise typer.Exit(2) from None
    from flows.monitor import monitor as monitor_flow
    from flows.summary import drift_table, show

    try:
        result = monitor_flow(prof, name, settings, version, alias, window)
    except (LookupError, ValueError) as exc:
        console.error(_first_line(exc))
        raise typer.Exit(1) from None
    if result.report is None:
        console.say(f"{name} v{result.version}: {result.rows} rows logged in the window ({result.window}), "
                    f"fewer than monitoring.min_rows {settings.min_rows}: no verdict yet")
        return
    show(drift_table(result))
    report = result.report
    answers = "" if report.prediction is None else f"; answers {'drifted' if report.prediction.drifted else 'stable'}"
    console.say(
        f"{result.verdict}: {len(report.drifted_features)} of {len(report.features)} features drifted "
        f"(share {report.share:.0%}, threshold {report.drift_share:.0%}){answers}. "
        f"Report: drift/ in MLflow run {result.run_id}" + ("; retraining asked for" if result.announced else "")
    )
    if fail_on_drift and report.drifted:
        raise typer.Exit(3)


def _first_line(exc: BaseException) -> str:
    """The message of an expected failure, without what Ray wraps around it."""
    cause = exc
    while cause.__cause__ is not None and not isinstance(cause, (LookupError, ValueError, FileNotFoundError)):
        cause = cause.__cause__
    return str(cause).strip().splitlines()[0]


server_app = typer.Typer(no_args_is_help=True, help="Long-running services on this machine: a Prefect server and the MLflow UI.")
app.add_typer(server_app, name="server")


@server_app.command("up")
def server_up(
    profile: Annotated[str, typer.Option(help="conf/profiles/NAME.yaml (whose MLflow store the UI shows)")] = "local",
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
) -> None:
    """Start a Prefect server (sqlite under .rayline/) and the MLflow UI in the background."""
    from flows import services

    prof = _profile(profile)
    try:
        running = services.up(prof, prefect_port, mlflow_port)
    except RuntimeError as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None
    _show_services(running, prof)
    console.say("every rayline command here now reports to this Prefect server; `rayline server down` stops both")


@server_app.command("down")
def server_down() -> None:
    """Stop what `rayline server up` started."""
    from flows import services

    stopped = services.down()
    console.say(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@server_app.command("status")
def server_status(profile: Annotated[str, typer.Option(help="conf/profiles/NAME.yaml")] = "local") -> None:
    """Whether each service runs and answers."""
    from flows import services

    running = services.status()
    if not running:
        console.say("no services: `rayline server up` starts them")
    _show_services(running, _profile(profile))
    if running and not all(r.healthy for r in running):
        raise typer.Exit(1)


@app.command()
def ui(profile: Annotated[str, typer.Option(help="conf/profiles/NAME.yaml")] = "local") -> None:
    """Where each UI is: Prefect, MLflow, the Ray dashboard."""
    from flows import services

    _show_services(services.status(), _profile(profile))


def _show_services(running: list, profile) -> None:
    for r in running:
        state = "up" if r.healthy else ("starting or not answering" if r.pid else "not running")
        console.say(f"{r.service.name:8} {r.service.url}  ({state}{f', pid {r.pid}' if r.pid else ''})")
    if profile.ray_address:
        host = profile.ray_address.removeprefix("ray://").split(":")[0]
        console.say(f"ray      http://{host}:8265  (the cluster's dashboard, on its head node)")
    else:
        console.say("ray      each command starts its own local Ray (no dashboard); a cluster's is on its head node, port 8265")


def _profile(name: str):
    try:
        return load_profile(name)
    except ConfigError as exc:
        console.error(str(exc))
        raise typer.Exit(2) from None


@app.command()
def schedule(
    config: ConfigArg,
    cron: Annotated[Optional[str], typer.Option(help='run on this cron line, e.g. "0 * * * *"')] = None,
    interval: Annotated[Optional[float], typer.Option(help="run every N seconds")] = None,
    on_new_data: Annotated[Optional[bool], typer.Option("--on-new-data/--no-on-new-data", help="also run when the watcher commits data")] = None,
    on_drift: Annotated[Optional[bool], typer.Option("--on-drift/--no-on-drift", help="also retrain when monitoring finds drift")] = None,
    monitor_every: Annotated[Optional[float], typer.Option(help="monitor the served model every N seconds")] = None,
    overlap: Annotated[Optional[str], typer.Option(help="a run due while one runs: wait or skip")] = None,
    force: Annotated[bool, typer.Option(help="retrain on every run, new data or not")] = False,
    verbose: Verbose = False,
) -> None:
    """Run the pipeline on a schedule (flags, else the config's `schedule:`), as a Prefect
    deployment served by this process until Ctrl-C. Needs a Prefect server (`rayline server up`)."""
    import os

    from components.config import RunScheduleConfig

    if "PREFECT_API_URL" not in os.environ:
        console.error("schedules need a Prefect server: run `rayline server up` (or set PREFECT_API_URL)")
        raise typer.Exit(1)
    ws = _workspace(config, "schedule", verbose)
    base = ws.config.schedule.model_dump() if ws.config.schedule else {}
    flags = {
        "cron": cron, "interval_seconds": interval, "on_new_data": on_new_data, "overlap": overlap,
        "on_drift": on_drift, "monitor_interval_seconds": monitor_every,
    }
    try:
        plan = RunScheduleConfig.model_validate({**base, **{k: v for k, v in flags.items() if v is not None}})
    except ValueError as exc:
        console.error(f"schedule: {exc}")
        raise typer.Exit(2) from None
    if plan.cron is None and plan.interval_seconds is None and not plan.on_new_data and not plan.on_drift:
        console.error(f"{config}: nothing to schedule on: give --cron, --interval, --on-new-data or --on-drift "
                      "(or a `schedule:` section)")
        raise typer.Exit(2)
    from prefect import serve as prefect_serve

    from flows.schedule import deployments

    clock = plan.cron or (f"every {plan.interval_seconds:g}s" if plan.interval_seconds else None)
    triggers = ("on new data" if plan.on_new_data else None, "on drift" if plan.on_drift else None)
    when = " and ".join(w for w in (clock, *triggers) if w)
    monitored = (f"; monitoring {ws.config.serving.name} every {plan.monitor_interval_seconds:g}s"
                 if plan.monitor_interval_seconds else "")
    console.say(f"scheduled {ws.name}: {when}, one run at a time ({plan.overlap} on overlap){monitored}; "
                f"runs at {os.environ['PREFECT_API_URL'].removesuffix('/api')}; Ctrl-C to stop")
    console.update(f"[bold]schedule[/bold] · serving deployment scheduled-pipeline/{ws.name}")
    # The runner asks the server for due runs every 2 s (Prefect's default is 10).
    prefect_serve(*deployments(ws, config, plan, force), print_starting_message=False, query_seconds=2)


runs_app = typer.Typer(no_args_is_help=True, help="Pipeline runs across Prefect, MLflow, Ray Tune and the registry.")
app.add_typer(runs_app, name="runs")


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="the MLflow run id a pipeline run printed (or its first characters)")],
    profile: Annotated[str, typer.Option(help="conf/profiles/NAME.yaml")] = "local",
) -> None:
    """One pipeline run joined up: its Prefect flow run, MLflow run, Tune experiment, the
    model version it registered with that bundle's data versions, and what serves now."""
    from components.artifacts.run_lineage import run_lineage
    from flows.summary import run_lineage_table, show

    prof = _profile(profile)
    try:
        lineage = run_lineage(prof.mlflow_tracking_uri, run_id)
    except LookupError as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None
    show(run_lineage_table(lineage))


lake_app = typer.Typer(no_args_is_help=True, help="The pipeline's Delta tables: versions and housekeeping.")
app.add_typer(lake_app, name="lake")


@lake_app.command("history")
def lake_history(
    config: ConfigArg,
    table: Annotated[str, typer.Argument(help="bronze, quarantine, ingested_files, silver_train, ...")] = "bronze",
    limit: Annotated[int, typer.Option(help="newest versions to show")] = 20,
) -> None:
    """A table's versions, newest first; train on one with `--data-version`."""
    ws = _workspace(config, "lake", verbose=True)
    from components.data.lake import Lake, TableNotFoundError
    from flows.summary import history_table, show

    lake = Lake(ws.lake)
    try:
        show(history_table(lake.history(table, limit), f"{ws.name}: {table}"))
    except (TableNotFoundError, ValueError) as exc:
        console.error(f"{exc}; the lake has {lake.tables()}")
        raise typer.Exit(1) from None


@lake_app.command("vacuum")
def lake_vacuum(
    config: ConfigArg,
    retain_hours: Annotated[int, typer.Option(help="keep every version younger than this")] = 168,
    dry_run: Annotated[bool, typer.Option(help="only list what would be deleted")] = False,
) -> None:
    """Delete files no version younger than the retention needs, in every table of the
    pipeline; older versions can no longer be read or trained on."""
    ws = _workspace(config, "lake", verbose=True)
    from components.data.lake import Lake

    lake = Lake(ws.lake)
    try:
        with lake.writer_lock():
            removed = {table: lake.vacuum(table, retain_hours, dry_run) for table in lake.tables()}
    except (ValueError, RuntimeError) as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None
    verb = "would delete" if dry_run else "deleted"
    for table, files in removed.items():
        console.say(f"{table}: {verb} {len(files)} file(s)")


vectors_app = typer.Typer(no_args_is_help=True, help="Word vectors (GloVe 6B 50d): nearest words, analogies, debiasing.")
app.add_typer(vectors_app, name="vectors")


def _glove() -> "WordVectors":
    from components.data.word_vectors import load_vectors

    try:
        return load_vectors("glove_6b_50d")
    except FileNotFoundError as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None


@vectors_app.command("nearest")
def vectors_nearest(word: str, k: Annotated[int, typer.Option(help="how many")] = 10) -> None:
    """The words whose vectors are closest to WORD's (cosine similarity)."""
    from flows.summary import predictions_table, show

    vectors = _glove()
    try:
        found = vectors.nearest(word.lower(), k)
    except KeyError as exc:
        console.error(str(exc.args[0]))
        raise typer.Exit(1) from None
    show(predictions_table([{"word": w, "cosine": round(c, 4)} for w, c in found], f"nearest to {word!r}"))


@vectors_app.command("analogy")
def vectors_analogy(a: str, b: str, c: str, k: Annotated[int, typer.Option(help="how many answers")] = 5) -> None:
    """A is to B as C is to ?: `rayline vectors analogy man king woman` (queen)."""
    from flows.summary import predictions_table, show

    vectors = _glove()
    try:
        found = vectors.analogy(a.lower(), b.lower(), c.lower(), k, limit=100_000)
    except KeyError as exc:
        console.error(str(exc.args[0]))
        raise typer.Exit(1) from None
    show(predictions_table([{"answer": w, "cosine": round(s, 4)} for w, s in found], f"{a} : {b} :: {c} : ?"))


@vectors_app.command("analogies")
def vectors_analogies(
    questions: Annotated[Optional[Path], typer.Option(help="a questions-words.txt (default: gensim's copy)")] = None,
    limit: Annotated[int, typer.Option(help="search the most frequent N words, as word2vec's evaluation")] = 30_000,
) -> None:
    """Accuracy on word2vec's analogy questions (19,544 in 14 sections), per section and over all."""
    from components.evaluation.analogies import analogy_accuracy, questions_file, read_questions
    from flows.summary import predictions_table, show

    try:
        text = (questions or questions_file()).read_text()
    except FileNotFoundError as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None
    scores = analogy_accuracy(_glove(), read_questions(text), limit)
    rows = [{"section": k, "accuracy": round(v, 4)} for k, v in scores.items()]
    show(predictions_table(rows, f"analogies, GloVe 6B 50d over the {limit:,} most frequent words"))


@vectors_app.command("word2vec")
def vectors_word2vec(
    mode: Annotated[str, typer.Option(help="skipgram or cbow")] = "skipgram",
    dim: Annotated[int, typer.Option(help="vector size")] = 50,
    epochs: Annotated[int, typer.Option(help="passes over the corpus")] = 5,
    window: Annotated[int, typer.Option(help="context words on each side (at most)")] = 5,
    min_count: Annotated[int, typer.Option(help="rarer words are left out")] = 3,
    seed: int = 0,
) -> None:
    """Train word2vec on the Lee corpus (300 news articles, 60,000 words), show neighbours,
    and compare its analogy accuracy with GloVe 6B 50d on the questions its words cover."""
    from components.models.word2vec import Word2VecConfig
    from components.training.word_vectors_fit import word2vec_on_text

    try:
        config = Word2VecConfig(vocab_size=1, embed_dim=dim, mode=mode, window=window)  # the vocabulary comes with the text
    except ValueError as exc:
        console.error(str(exc))
        raise typer.Exit(2) from None
    _train_on_lee(f"word2vec {mode}", lambda text: word2vec_on_text(text, config, min_count, epochs=epochs, seed=seed))


@vectors_app.command("glove")
def vectors_glove(
    dim: Annotated[int, typer.Option(help="vector size")] = 50,
    epochs: Annotated[int, typer.Option(help="passes over the co-occurrence counts")] = 25,
    window: Annotated[int, typer.Option(help="words on each side that co-occur (1/distance each)")] = 10,
    min_count: Annotated[int, typer.Option(help="rarer words are left out")] = 3,
    x_max: Annotated[float, typer.Option(help="counts above this weigh 1")] = 100.0,
    seed: int = 0,
) -> None:
    """Train GloVe on the Lee corpus's co-occurrence counts, show neighbours, and compare its
    analogy accuracy with GloVe 6B 50d's on the questions its words cover."""
    from components.models.glove import GloVeConfig
    from components.training.word_vectors_fit import glove_on_text

    try:
        config = GloVeConfig(vocab_size=1, embed_dim=dim, x_max=x_max)  # the vocabulary comes with the text
    except ValueError as exc:
        console.error(str(exc))
        raise typer.Exit(2) from None
    _train_on_lee("GloVe", lambda text: glove_on_text(text, config, min_count, window, epochs=epochs, seed=seed))


def _train_on_lee(name: str, fit) -> None:
    """Vectors `fit(text)` trains on the Lee corpus: their neighbours of a few words, their
    agreement with GloVe 6B 50d and analogy accuracy beside GloVe's on the questions covered."""
    from components.data.corpus import corpus_file
    from components.evaluation.analogies import analogy_accuracy, covered, questions_file, read_questions
    from components.evaluation.embeddings_report import glove_agreement
    from flows.summary import predictions_table, show

    try:
        text, questions = corpus_file("lee").read_text(), read_questions(questions_file().read_text())
        glove = _glove()
    except (FileNotFoundError, ValueError) as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None
    console.say(f"{name} on the Lee corpus ...")
    ours, losses = fit(text)
    rows = [{"word": w, "nearest (ours)": ", ".join(n for n, _ in ours.nearest(w, 5))}
            for w in ("fire", "police", "australia", "government", "tuesday") if w in ours.index]
    show(predictions_table(rows, f"{name} on the Lee corpus: loss {losses[0]:.3f} -> {losses[-1]:.3f}; agreement "
                                 f"with GloVe 6B 50d (Spearman) {glove_agreement(ours, glove):.3f}"))
    asked = covered(questions, ours)
    mine = analogy_accuracy(ours, asked, limit=len(ours.words))
    theirs = analogy_accuracy(glove, asked)
    table = [{"section": k, "questions": len(asked[k]) if k in asked else sum(map(len, asked.values())),
              f"{name} (Lee)": round(mine.get(k, 0.0), 4), "GloVe 6B 50d": round(theirs.get(k, 0.0), 4)}
             for k in [*asked, "all"]]
    show(predictions_table(table, "analogy accuracy on the questions whose four words the Lee corpus has"))


@vectors_app.command("debias")
def vectors_debias(
    words: Annotated[Optional[list[str]], typer.Argument(help="words that should be neutral")] = None,
) -> None:
    """How far words lean along the gender direction (cosine with it), before and after
    neutralising; and pairs equalised to stand symmetric about it."""
    from components.data.debiasing import bias_direction, equalize, neutralize, projection
    from components.data.word_vectors import cosine
    from flows.summary import predictions_table, show

    vectors = _glove()
    g = bias_direction(vectors)
    rows = []
    for word in words or ["receptionist", "engineer", "nurse", "programmer", "homemaker", "doctor"]:
        e = vectors.vector(word.lower())
        rows.append({"word": word, "before": round(projection(e, g), 4), "after": round(projection(neutralize(e, g), g), 4)})
    show(predictions_table(rows, "cosine with the gender direction, before and after neutralising"))
    neutral = neutralize(vectors.vector("babysit"), g)
    pairs = []
    for a, b in (("actress", "actor"), ("grandmother", "grandfather"), ("girl", "boy")):
        ea, eb = vectors.vector(a), vectors.vector(b)
        fa, fb = equalize(ea, eb, g)
        pairs.append({"pair": f"{a} / {b}", "projections before": f"{projection(ea, g):.3f} / {projection(eb, g):.3f}",
                      "after": f"{projection(fa, g):.3f} / {projection(fb, g):.3f}",
                      "cosine with neutral 'babysit' after": f"{cosine(fa, neutral):.3f} / {cosine(fb, neutral):.3f}"})
    show(predictions_table(pairs, "equalised pairs: equal and opposite along the direction, equally far from neutral words"))


@app.command()
def predict(
    name: Annotated[str, typer.Argument(help="served model name")],
    file: Annotated[Path, typer.Argument(help="rows to score: .csv, .ndjson/.jsonl or .parquet")],
    url: str = "http://127.0.0.1:8000",
) -> None:
    """Score a file through the live endpoint and print one prediction per row."""
    from components.data.sources import read_file
    from flows.summary import predictions_table, show
    from serving.client import EndpointError, model_inputs, predict_rows

    suffix = file.suffix.lower()
    if not file.is_file():
        console.error(f"{file}: no such file")
        raise typer.Exit(2)
    if suffix not in (".csv", ".ndjson", ".jsonl", ".parquet"):
        console.error(f"{file}: expected .csv, .ndjson, .jsonl or .parquet, got {suffix or 'no suffix'}")
        raise typer.Exit(2)
    rows = pl.read_csv(file) if suffix == ".csv" else read_file(file, "parquet" if suffix == ".parquet" else "ndjson")
    try:
        inputs = model_inputs(url, name)
        missing = [c for c in inputs if c not in rows.columns]
        if missing:
            console.error(f"{file}: missing input column(s) {missing} of model {name!r}")
            raise typer.Exit(2)
        predictions, version = predict_rows(url, name, rows.select(list(inputs)))
    except (EndpointError, OSError) as exc:
        console.error(str(exc))
        raise typer.Exit(1) from None
    show(predictions_table([{"row": i, **_flat(p)} for i, p in enumerate(predictions)], f"{name} v{version}"))


def _flat(prediction: object) -> dict[str, object]:
    if isinstance(prediction, dict) and "source" in prediction:
        return {"source": prediction["source"], "written": prediction["text"]}
    if isinstance(prediction, dict) and "prompt" in prediction:
        return {"prompt": prediction["prompt"], "generated": prediction["text"]}
    if isinstance(prediction, dict) and "entities" in prediction:
        return {"entities": "; ".join(f"{e['type']} {e['text']}" for e in prediction["entities"]) or "-"}
    if isinstance(prediction, dict) and "nearest" in prediction:
        return {"word": prediction.get("word"), "nearest": ", ".join(n["word"] for n in prediction["nearest"])}
    if isinstance(prediction, dict) and "distance" in prediction:
        return {"distance": round(prediction["distance"], 4), "same": prediction["same"]}
    if isinstance(prediction, dict):
        best = max(prediction["probabilities"].values())
        return {"label": prediction["label"], "probability": best}
    return {"prediction": prediction}


def _smoke(ws: Workspace, url: str, n: int) -> None:
    """Send n raw test rows (pairs of test images for verification models) over HTTP and
    print the answers next to the true values."""
    import re
    from collections import Counter

    import numpy as np

    from components.data.image_preparation import raw_images
    from components.data.lake import Lake
    from components.data.preparation import raw_split
    from components.data.silver import read_silver
    from components.data.splits import assign_splits
    from components.data.bio import entities
    from components.evaluation.verification import make_pairs
    from components.models import WORD_VECTOR_TASKS, training_task
    from flows.summary import predictions_table, show
    from serving.client import predict_images, predict_instances, predict_pairs, predict_rows

    lake = Lake(ws.lake)
    snapshot = read_silver(lake)
    cfg = ws.config
    bronze = lake.read("bronze", snapshot.bronze_version)
    if cfg.modality == "image" and training_task(cfg.model) == "metric_learning":
        test = raw_images(bronze, cfg.split, "test")
        a, b, _ = make_pairs(test["label"].to_numpy(), n, np.random.default_rng(cfg.split.seed))
        labels, images = test["label"].to_list(), test["image"].to_list()
        truths = [f"{labels[i]} vs {labels[j]}" for i, j in zip(a, b)]
        predictions, version = predict_pairs(url, cfg.serving.name, [(images[i], images[j]) for i, j in zip(a, b)])
    elif cfg.modality == "image":
        test = raw_images(bronze, cfg.split, "test").head(n)
        truths = test["label"].to_list()
        predictions, version = predict_images(url, cfg.serving.name, test["image"].to_list())
    elif cfg.task == "seq2seq":
        test = raw_split(bronze, cfg.schema_, cfg.split, "test").head(n)
        truths = test[cfg.schema_.target].to_list()
        requests = [{"source": s, "beam_size": 4} for s in test[cfg.pairs.source].to_list()]
        predictions, version = predict_instances(url, cfg.serving.name, requests, chunk=16)
    elif training_task(cfg.model) in WORD_VECTOR_TASKS:
        # the n most frequent words of four letters or more in the training passages, which the model knows
        train = bronze.filter(assign_splits(bronze, cfg.split, "text") == "train")["text"].to_list()
        counts = Counter(w for text in train for w in re.findall(r"[a-z]{4,}", text.lower()))
        words = [w for w, _ in counts.most_common(n)]
        truths = ["-"] * len(words)
        predictions, version = predict_instances(url, cfg.serving.name, [{"word": w, "k": 5} for w in words], chunk=16)
    elif cfg.task == "language_model":
        # the opening of each of n test passages, continued by the model
        test = bronze.filter(assign_splits(bronze, cfg.split, "text") == "test").head(n)
        prompts = [text[:40] for text in test["text"].to_list()]
        truths = [text[40:100] for text in test["text"].to_list()]
        requests = [{"prompt": p, "max_tokens": 60, "temperature": 0.8, "top_k": 10, "seed": i} for i, p in enumerate(prompts)]
        predictions, version = predict_instances(url, cfg.serving.name, requests, chunk=8)
    elif cfg.modality == "tagged":
        test = bronze.filter(assign_splits(bronze, cfg.split, "tags") == "test").head(n)
        truths = ["; ".join(f"{e.type} {' '.join(tokens[e.start:e.end])}" for e in entities(tags)) or "-"
                  for tokens, tags in zip(test["tokens"].to_list(), test["tags"].to_list())]
        predictions, version = predict_instances(url, cfg.serving.name, test["tokens"].to_list(), chunk=64)
    elif cfg.modality == "text":
        test = raw_split(bronze, cfg.schema_, cfg.split, "test").head(n)
        truths = test[cfg.schema_.target].to_list()
        predictions, version = predict_instances(url, cfg.serving.name, test[cfg.text.column].to_list(), chunk=64)
    else:
        test = raw_split(bronze, cfg.schema_, cfg.split, "test").head(n)
        truths = test[cfg.schema_.target].to_list()
        predictions, version = predict_rows(url, cfg.serving.name, test.drop(cfg.schema_.target))
    rows = [{"row": i, "true": truth, **_flat(p)} for i, (truth, p) in enumerate(zip(truths, predictions))]
    show(predictions_table(rows, f"{n} test rows through {url} ({cfg.serving.name} v{version})"))


def _serve_forever(ray_address: str | None, url: str) -> None:
    if ray_address:
        return  # the cluster keeps serving after this process exits
    console.say(f"endpoint live at {url} (docs at {url}/docs); Ctrl-C to stop")
    # Ray Tune installs its own SIGINT handler during a search; Ctrl-C must stop us again.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        _shutdown()


def _shutdown() -> None:
    import ray
    from ray import serve

    if ray.is_initialized():
        with console.quiet_stdout():
            serve.shutdown()
            ray.shutdown()


if __name__ == "__main__":
    main()
