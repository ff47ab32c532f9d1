"""The load side shared by the serving benchmarks: a closed-loop HTTP client and what it
measured, and the server processes it measures (ports, readiness, start and stop)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

# benchmarks/ is on sys.path: the scripts that import this module put it there
from _common import machine_busy_s

REQUEST_ID_HEADER = "x-request-id"

# A line of Serve's access logs, proxy and replicas alike:
# "INFO 2026-11-21 06:31:27,232 rayline_Gateway xci89ruj <request id> -- POST /v1/... 200 24.7ms"
ACCESS_LINE = re.compile(r"^\S+ (?P<at>\S+ \S+) \S+ \S+ (?P<id>\S+) -- .* (?P<ms>\d+(?:\.\d+)?)ms$")


@dataclass
class Measured:
    """One block of requests: the latencies of those answered 200, the rest, the wall time
    and, when measured, the CPU seconds each group of processes used meanwhile."""

    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # group -> CPU seconds during the timed requests
    machine_busy: float = 0.0  # CPU seconds all processes on the machine used meanwhile

    def add(self, other: Measured) -> None:
        self.latencies_s += other.latencies_s
        self.errors += other.errors
        self.elapsed_s += other.elapsed_s
        for group, seconds in other.cpu.items():
            self.cpu[group] = self.cpu.get(group, 0.0) + seconds
        self.machine_busy += other.machine_busy

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    def pct_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q)) * 1e3 if self.latencies_s else float("nan")

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def cpu_ms(self, group: str) -> float:
        return self.cpu.get(group, 0.0) / self.ok * 1e3 if self.ok else float("nan")

    @property
    def others_cores(self) -> float:
        """Cores kept busy by processes outside this benchmark during the timed requests."""
        return max(self.machine_busy - sum(self.cpu.values()), 0.0) / self.elapsed_s if self.elapsed_s else 0.0


async def _timed(measured: Measured, request: Awaitable[httpx.Response]) -> None:
    """Send one request (the coroutine starts when awaited, after the clock does); its latency
    goes into `measured` when it answers 200, else it counts as an error."""
    t0 = time.perf_counter()
    try:
        ok = (await request).status_code == 200
    except httpx.HTTPError:
        ok = False
    if ok:
        measured.latencies_s.append(time.perf_counter() - t0)
    else:
        measured.errors += 1


# pid -> (group, CPU seconds) for the server's processes; the groups are each script's own
CpuByProcess = Callable[[], dict[int, tuple[str, float]]]


async def drive(
    client: httpx.AsyncClient, url: str, bodies: Sequence[bytes], concurrency: int, total: int, seconds: float,
    tag: str = "", cpu: CpuByProcess | None = None,
) -> Measured:
    """`concurrency` closed-loop senders until `total` requests are sent or `seconds` pass;
    request n sends bodies[n % len(bodies)] and, with `tag`, `x-request-id: {tag}-{n}`, which
    Serve uses as its request id (in its access logs, for this request and the handle calls
    it makes); uvicorn ignores it. With `cpu`, also the CPU seconds per group of the server's
    processes, the client's own ("client") and the whole machine's over the block."""
    measured = Measured()
    sent = 0
    deadline = time.perf_counter() + seconds

    async def sender() -> None:
        nonlocal sent
        while sent < total and time.perf_counter() < deadline:
            n = sent
            sent += 1
            headers = {"content-type": "application/json", **({REQUEST_ID_HEADER: f"{tag}-{n}"} if tag else {})}
            await _timed(measured, client.post(url, content=bodies[n % len(bodies)], headers=headers))

    if cpu is not None:
        before, client_before, machine_before = cpu(), time.process_time(), machine_busy_s()
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    measured.elapsed_s = time.perf_counter() - started
    if cpu is not None:
        after, client_after, machine_after = cpu(), time.process_time(), machine_busy_s()
        measured.cpu = {"client": client_after - client_before}
        for pid, (group, used) in after.items():
            measured.cpu[group] = measured.cpu.get(group, 0.0) + used - before.get(pid, (group, 0.0))[1]
        measured.machine_busy = machine_after - machine_before
    return measured


async def health(client: httpx.AsyncClient, url: str, n: int) -> Measured:
    """GET `url` (/healthz) `n` times one after another: the HTTP + ingress path without any model work."""
    measured = Measured()
    started = time.perf_counter()
    for _ in range(n):
        await _timed(measured, client.get(url))
    measured.elapsed_s = time.perf_counter() - started
    return measured


# ---------------------------------------------------------------------------- the server processes


def free_port(ports: range | None = None) -> int:
    """The first port of `ports` free on 127.0.0.1; without `ports`, one the system picks."""
    if ports is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def wait_ready(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    """Until `url` answers 200; fails early when `proc`, the server's process, exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server process exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:.0f}s")


def stop(proc: subprocess.Popen, timeout_s: float) -> None:
    """Let a server process exit on its own within `timeout_s`, then terminate, then kill it."""
    for step in (None, proc.terminate, proc.kill):
        if step is not None:
            step()
        try:
            proc.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue


def serve_until_stdin_closes(ready_path: str | Path, ready: dict[str, Any]) -> None:
    """The child's side of `serving_child`: write `ready` (where it listens and what it took)
    to `ready_path`, then serve until the benchmark closes our stdin."""
    Path(ready_path).write_text(json.dumps(ready))
    sys.stdin.read()


@contextmanager
def serving_child(
    cmd: list[str], env: dict[str, str], ready_path: Path, log_path: Path, timeout_s: float, label: str
) -> Iterator[tuple[subprocess.Popen, dict[str, Any]]]:
    """Start `cmd`, a child that serves until its stdin closes, and wait for the JSON it
    writes to `ready_path` once it answers; yield (process, that JSON). On exit close its
    stdin, so that it shuts Serve and its Ray down, and wait for it to go."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout_s
        while not ready_path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{label} did not start (exit {proc.returncode}); its output ends:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.25)
        yield proc, json.loads(ready_path.read_text())
    finally:
        proc.stdin.close()  # the child shuts Serve and its Ray down and exits
        stop(proc, 60)


@contextmanager
def plain_server(bundle_dir: Path, name: str, version: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`_plain_server.py` serving the bundle on a free port; yield (base URL, process) once it
    answers, and stop it on exit. Its output goes to plain_server.log beside the bundle."""
    port = free_port()
    cmd = [
        sys.executable, str(Path(__file__).resolve().parent / "_plain_server.py"),
        "--bundle", str(bundle_dir), "--name", name, "--version", version, "--port", str(port),
    ]
    log = Path(bundle_dir).parent / "plain_server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{base}/healthz", 60.0, proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; its output:\n{log.read_text()[-3000:]}") from exc
        yield base, proc
    finally:
        proc.terminate()
        stop(proc, 15)
