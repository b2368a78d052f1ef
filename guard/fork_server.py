"""Where inspection workers come from: multiprocessing's fork server, started first thing by ``guard proxy``.

The fork server is a single-threaded process started afresh (never a clone of the proxy's event loop
and threads). It imports ``guard.worker_preload``, which builds and warms the policy's engine while
the proxy process is still importing mitmproxy; every worker is forked from it with that engine in
memory. This module is light on purpose: importing it must not delay the start of that work.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os

# The engine (guard.worker_preload) and the audit writer's modules (the store, SQLAlchemy), so that
# neither an inspection worker nor the audit writer imports anything once forked.
PRELOAD_MODULES = ["guard.worker_preload", "guard.audit.process"]
POLICY_VARIABLE = "GUARD_PRELOAD_POLICY"


def worker_context() -> multiprocessing.context.ForkServerContext:
    """The multiprocessing context the inspection workers and the audit writer are started from."""
    context = multiprocessing.get_context("forkserver")
    # __main__ too (multiprocessing's default): each child imports the main module again, and would
    # otherwise pay for that import itself.
    context.set_forkserver_preload(["__main__", *PRELOAD_MODULES])
    return context


def start_fork_server(policy_path: str | None) -> None:
    """Start the fork server now; it builds ``policy_path``'s engine (None: the bundled default)."""
    from multiprocessing import forkserver

    worker_context()
    os.environ[POLICY_VARIABLE] = policy_path or ""
    try:
        forkserver.ensure_running()
    finally:
        del os.environ[POLICY_VARIABLE]  # only the fork server builds it, not later children
