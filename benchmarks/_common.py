"""Helpers shared by the benchmark scripts: the results file and how the run was made."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# Other work on a 2-core machine skews every timing: the load average is recorded with the results.
_LOAD_AT_START = os.getloadavg()
_HEADER = "# Benchmark results\n\nEach section is rewritten by the script named in it; see README.md.\n"


def command_line() -> str:
    """The command that ran this script, relative to the repository root where possible."""
    root = RESULTS.parent.parent
    exe = Path(sys.executable)
    shown_exe = os.path.relpath(exe, root) if exe.is_relative_to(root) else str(exe)
    script = Path(sys.argv[0]).resolve()
    shown_script = os.path.relpath(script, root) if script.is_relative_to(root) else str(script)
    return shlex.join([shown_exe, shown_script, *sys.argv[1:]])


def machine() -> str:
    return f"{os.cpu_count()} cores CPU, no GPU ({platform.machine()}, Python {platform.python_version()})"


def project_code() -> str:
    """The commit of the project code this process imports, and whether it differs from it."""
    import components

    root = Path(components.__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "components", "flows", "serving", "conf")
    except (OSError, subprocess.CalledProcessError):
        return "project code: not a git checkout"
    return f"project code at commit {commit}" + (" plus uncommitted changes" if dirty else "")


def load_note() -> str:
    """1-minute load average when the script started and now, from other processes and this one."""
    return f"load average (1 min) {_LOAD_AT_START[0]:.2f} at start, {os.getloadavg()[0]:.2f} at the end"


_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """Non-idle CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICKS  # user nice system idle iowait irq softirq steal


def process_tree_cpu(root_pid: int) -> dict[int, tuple[str, float]]:
    """pid -> (command line, user + system CPU seconds) for `root_pid` and all its descendants."""
    procs: dict[int, tuple[int, str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        procs[int(entry.name)] = (int(fields[1]), cmdline, (int(fields[11]) + int(fields[12])) / _TICKS)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out[pid] = procs[pid][1:]
            todo.extend(children.get(pid, []))
    return out

# Processes grouped by what they are (for "where the CPU went" tables); a group outside the
# measured process tree carries this suffix.
ELSEWHERE = " (not under this run)"


def named_cpu(root: int) -> dict[int, tuple[str, float]]:
    """pid -> (group name, CPU seconds) of every process; names outside `root`'s tree are marked."""
    tree = process_tree_cpu(root)
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = Path(entry.path, "stat").read_text()
            args = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS
        if cpu == 0 and pid not in tree:
            continue
        name = process_name([a.decode(errors="replace") for a in args])
        out[pid] = (name if pid in tree else f"{name}{ELSEWHERE}", cpu)
    return out


def process_name(args: list[str]) -> str:
    """A process's group: Ray's title without the method (ray::SplitCoordinator), a Python
    script's or module's name, else the executable's name."""
    first = args[0] if args else ""
    if first.startswith("ray::"):
        return first.split()[0].split(".")[0]
    base = os.path.basename(first.split()[0]) if first.strip() else "?"
    if base.startswith("python"):
        rest = [a for a in args[1:] if a and not a.startswith("-")]
        return f"python {os.path.basename(rest[0])}" if rest else base
    return base


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, min, max) of repeated measurements (seeds, runs)."""
    return statistics.fmean(values), min(values), max(values)


def spread_cell(values: Sequence[float], digits: int = 4, bold: bool = True) -> str:
    """A table cell: the mean (bold) and the min-max range of `values`."""
    mean, lo, hi = spread(values)
    shown = f"**{mean:.{digits}f}**" if bold else f"{mean:.{digits}f}"
    return f"{shown} ({lo:.{digits}f}-{hi:.{digits}f})"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; it also reads fine on a terminal."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_section(key: str, title: str, body: str) -> None:
    """Replace (or append) the section `key` of RESULTS.md, stamped with command, date and machine."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    stamp = (
        f"Command: `{command_line()}`  \n"
        f"Date: {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}  \n"
        f"Machine: {machine()}; {load_note()}  \n"
        f"Code: {project_code()}"
    )
    section = f"{start}\n## {title}\n\n{stamp}\n\n{body.strip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else _HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def run_child(script: str | Path, spec: dict, workdir: Path, key: str, label: str, env: dict[str, str],
              timeout_s: float) -> dict:
    """Run `script --ray-child SPEC` in a fresh interpreter with `env`; return the JSON it
    wrote to spec["out"]. Raises with the tail of its output when it fails or times out."""
    import json

    spec_path, out_path, log_path = (workdir / f"{key}.{ext}" for ext in ("spec.json", "out.json", "log"))
    spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
    cmd = [sys.executable, str(Path(script).resolve()), "--ray-child", str(spec_path)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.terminate()  # the child's ray.shutdown (in `finally`) stops the Ray it started
            proc.wait(timeout=30)
            code = None
    if code != 0 or not out_path.exists():
        tail = log_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{label} failed (exit {code}); its output ends:\n{tail}")
    return json.loads(out_path.read_text())


def waited(stamps: list, split: str, batches: Iterable[Any]) -> Iterator[Any]:
    """The batches unchanged; appends (f"{split}_wait", seconds the loop waited for them) and
    (f"{split}_first", seconds it waited for the first) to `stamps` once they are spent."""
    total, first = 0.0, None
    t0 = time.perf_counter()
    for batch in batches:
        now = time.perf_counter()
        total += now - t0
        first = now - t0 if first is None else first
        yield batch
        t0 = time.perf_counter()
    total += time.perf_counter() - t0
    stamps.append((f"{split}_wait", total))
    stamps.append((f"{split}_first", first or 0.0))


def by_epoch(stamps: Iterable[Sequence[Any]]) -> list[dict[str, list[Any]]]:
    """Timing stamps `(phase, *values)` as the loop appended them, one dict per epoch
    (phase -> its values); an epoch ends with its "reported" stamp."""
    epochs: list[dict[str, list[Any]]] = []
    current: dict[str, list[Any]] = {}
    for phase, *values in stamps:
        current[phase] = values
        if phase == "reported":
            epochs.append(current)
            current = {}
    return epochs
