"""The inspection worker pool: engine work off the proxy's event loop, on the other cores.

One mitmproxy process drives all connections from one event loop. Inspection is CPU work, so it
runs in worker processes (each with its own engine, built once at start) and the loop only awaits
the result: a 50,000-character paste occupies one worker, not every user's connection. With
``workers=0`` the engine runs in one thread of this process (tests, small installs).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from guard.engine import Engine
from guard.policy import load_policy
from guard.verdict import Verdict

_worker_engine: Engine | None = None


def _start_worker(policy_path: str | None) -> None:
    global _worker_engine
    import logging

    for name in ("presidio-analyzer", "presidio-anonymizer", "jieba"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _worker_engine = Engine(load_policy(policy_path))
    _worker_engine.warm_up()


def _inspect(texts: Sequence[str], destination: str | None) -> Verdict:
    if _worker_engine is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("inspection worker started without an engine")
    return _worker_engine.inspect_segments(texts, destination)


def _ping() -> int:
    return os.getpid()


class InspectionPool:
    """Runs ``Engine.inspect_segments`` in a pool; ``inspect`` is awaited from the event loop."""

    def __init__(self, policy_path: str | None, workers: int) -> None:
        self.workers = workers
        self.policy_path = policy_path
        self._executor: Executor
        if workers > 0:
            # spawn, not fork: the proxy process has an event loop and threads that must not be cloned.
            self._executor = ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(policy_path,),
            )
        else:
            self._executor = ThreadPoolExecutor(max_workers=1, initializer=_start_worker,
                                                initargs=(policy_path,))
        self._pending = 0

    def wait_ready(self) -> None:
        """Block until every worker has built its engine (start-up fails loudly if one cannot)."""
        futures = [self._executor.submit(_ping) for _ in range(max(1, self.workers))]
        for future in futures:
            future.result()

    @property
    def pending(self) -> int:
        """Inspections submitted and not yet finished (the queue depth metric)."""
        return self._pending

    async def inspect(self, texts: Sequence[str], destination: str | None) -> Verdict:
        loop = asyncio.get_running_loop()
        self._pending += 1
        try:
            return await loop.run_in_executor(self._executor, _inspect, list(texts), destination)
        finally:
            self._pending -= 1

    def close(self, finish_pending: bool = False) -> None:
        """Stop the workers; with ``finish_pending`` the inspections already queued still complete
        (a policy reload must not drop requests), otherwise they are cancelled (shutdown)."""
        self._executor.shutdown(wait=False, cancel_futures=not finish_pending)
