"""Imported by the inspection workers' fork server (guard.fork_server): one engine, built and warmed once.

With ``GUARD_PRELOAD_POLICY`` set (``guard proxy`` sets it for the fork server only), importing this
module builds that policy's engine and warms it (Presidio, jieba's dictionary, OpenCC). Every worker
forked afterwards finds it in memory and uses it when the policy file has not changed since. Building
at import is this module's only job; nothing else imports it.
"""

from __future__ import annotations

import os

from guard.engine import Engine
from guard.fork_server import POLICY_VARIABLE


def _preload() -> Engine | None:
    path = os.environ.get(POLICY_VARIABLE)
    if path is None:
        return None
    try:
        from guard.workers import build_engine

        return build_engine(path or None)
    except Exception:  # the worker builds its own and reports the problem to the proxy
        return None


ENGINE: Engine | None = _preload()
