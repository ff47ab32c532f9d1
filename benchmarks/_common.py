"""Helpers shared by the benchmark scripts: the results file and how the run was made."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
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
        f"Machine: {machine()}"
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
