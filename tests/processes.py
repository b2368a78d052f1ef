"""Reading /proc for the tests and the benchmark: a process's children and its scheduler state."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (empty once it is gone)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except FileNotFoundError:
        pass
    return found


def state(pid: int) -> str:
    """``R`` running, ``S`` sleeping, ``Z`` zombie ...; empty once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return ""


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def holds_file(pid: int, name: str) -> bool:
    """Whether the process has a file whose path ends in ``name`` open (e.g. the audit database)."""
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, PermissionError):
        return False
    for fd in descriptors:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(name):
                return True
        except OSError:
            continue
    return False


def guard_processes(pid: int) -> tuple[list[int], list[int]]:
    """A ``guard proxy``'s inspection workers and its audit writer (the one holding the audit database
    open). Both are forked by multiprocessing's fork server, a child of the proxy (guard.fork_server);
    neither the fork server nor the resource tracker is one of them."""
    servers = [child for child in children(pid) if b"forkserver" in cmdline(child)]
    spawned = [child for server in servers for child in children(server)]
    audit = [child for child in spawned if holds_file(child, "audit.db")]
    return [child for child in spawned if child not in audit], audit
