"""Start-up benchmark: seconds from launching ``guard proxy`` to ``/readyz`` 200, and whether the proxy
port ever accepted a connection before the proxy was ready.

Each run starts a fresh proxy (its own confdir and SQLite audit store, the bundled default policy,
``guard_workers`` as given) and polls, every 20 ms, first the proxy port (a TCP connect) and then
``/readyz`` on the ops listener. A connect that succeeds while ``/readyz`` is not yet 200 is a
connection held during start-up; the proxy should refuse those instead. Loopback only; every process
started here is stopped.

    .venv/bin/python deploy/startup_time.py [--runs 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

POLL_SECONDS = 0.02
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Startup:
    ready_s: float            # launch -> /readyz 200
    listening_s: float        # launch -> the proxy port accepts a connection
    ops_s: float              # launch -> the ops listener answers (503 while starting)
    held_connections: int     # connects accepted while /readyz was not 200
    cpu_s: float              # CPU seconds the proxy and its processes had used when it was ready


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                todo += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and every live descendant (Linux /proc)."""
    ticks = 0
    for process in _descendants(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _ready(url: str) -> bool | None:
    """True on 200, False on another answer, None when nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except urllib.error.HTTPError:
        return False
    except OSError:
        return None


def measure(workers: int = 2, timeout: float = 180.0, python: str = sys.executable) -> Startup:
    """Launch one proxy, watch it start, stop it."""
    port, ops = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="guard-startup-") as directory:
        command = [python, "-m", "guard.cli", "proxy", "--listen-port", str(port),
                   "--ops-listen", f"127.0.0.1:{ops}", "--confdir", directory,
                   "--audit-db", f"sqlite:///{directory}/audit.db", "--set", f"guard_workers={workers}"]
        log_path = Path(directory, "proxy.log")
        with log_path.open("wb") as log:
            started = time.monotonic()
            process = subprocess.Popen(command, cwd=directory, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONPATH": str(REPO)})  # this checkout's guard
        listening = ops_up = ready_at = None
        held, cpu = 0, 0.0
        try:
            while ready_at is None or listening is None:
                now = time.monotonic() - started
                if process.poll() is not None or now > timeout:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"guard proxy did not become ready ({process.returncode}):\n{tail}")
                accepted = _accepts(port)
                ready = _ready(f"http://127.0.0.1:{ops}/readyz")  # after the connect: see the docstring
                if ready is not None and ops_up is None:
                    ops_up = now
                if accepted and listening is None:
                    listening = now
                if accepted and not ready:
                    held += 1
                if ready and ready_at is None:
                    ready_at = time.monotonic() - started
                    cpu = cpu_seconds(process.pid)
                time.sleep(POLL_SECONDS)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return Startup(round(ready_at, 2), round(listening, 2), round(ops_up or ready_at, 2), held, round(cpu, 2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="proxies started one after another (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="guard_workers (default 2)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    args = parser.parse_args()
    runs = [measure(args.workers) for _ in range(args.runs)]
    if args.json:
        print(json.dumps([asdict(r) for r in runs]))
        return 0
    print("| run | ops listener answers | proxy port accepts | /readyz 200 | connections held | CPU used |")
    print("|---|---|---|---|---|---|")
    for i, run in enumerate(runs, 1):
        print(f"| {i} | {run.ops_s:.2f} s | {run.listening_s:.2f} s | {run.ready_s:.2f} s "
              f"| {run.held_connections} | {run.cpu_s:.1f} s |")
    print(f"median launch -> /readyz 200: {statistics.median(r.ready_s for r in runs):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
