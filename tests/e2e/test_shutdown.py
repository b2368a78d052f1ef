"""Graceful shutdown of a real ``guard proxy``: SIGTERM mid-request lets the request finish, then exit 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    RAW_VALUES,
    CurlResult,
    GuardProxy,
    curl,
    echoed,
    free_port,
    nonce,
    pii_prompt,
    write_policy,
)
from tests.e2e.test_ops import _get, _wait_for_ops
from tests.e2e.upstream import UpstreamServer

pytestmark = pytest.mark.usefixtures("curl_available")

SLOW_SECONDS = 3


def _chat(prompt: str) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
                      ensure_ascii=False).encode()


def _readiness_once_signalled(ops: str, within: float = 5.0) -> tuple[int, object]:
    """/readyz a moment after SIGTERM: the signal reaches the proxy's event loop asynchronously."""
    deadline = time.monotonic() + within
    while True:
        status, body = _get(f"{ops}/readyz")
        if status != 200 or time.monotonic() > deadline:
            return status, json.loads(body)
        time.sleep(0.02)


def _refused_soon(port: int, within: float = 5.0) -> bool:
    """No new connections while draining: a balancer retries them on another node."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return True
        time.sleep(0.02)
    return False


def test_sigterm_finishes_the_request_in_flight_then_exits_0(tmp_path: Path,
                                                             openai_upstream: UpstreamServer) -> None:
    ops = f"http://127.0.0.1:{free_port()}"
    policy = write_policy(tmp_path / "policy.yaml", {"e2e-openai": ("openai", openai_upstream)})
    proxy = GuardProxy(confdir=tmp_path, log_path=tmp_path / "proxy.log", policy=policy,
                       options=(f"guard_ops_listen={ops.removeprefix('http://')}", "guard_drain_seconds=20"))
    proxy.start()
    try:
        _wait_for_ops(ops, proxy.log_path)
        assert _get(f"{ops}/readyz")[0] == 200
        tag = nonce()
        url = f"{openai_upstream.base_url}/v1/chat/completions?delay={SLOW_SECONDS}"
        answer: list[CurlResult] = []
        client = threading.Thread(target=lambda: answer.append(
            curl(proxy, url, _chat(pii_prompt(tag)), {"content-type": "application/json"})))
        client.start()
        deadline = time.monotonic() + 30
        while not openai_upstream.received(tag):  # the (redacted) prompt reached the slow service
            assert time.monotonic() < deadline, "the request never reached the upstream"
            time.sleep(0.05)

        assert proxy.process is not None
        proxy.process.send_signal(signal.SIGTERM)
        assert _readiness_once_signalled(ops) == (503, {"ready": False, "reason": "shutting down"})
        assert _refused_soon(proxy.port), "still accepting connections while draining"
        assert proxy.process.poll() is None, "the proxy exited with a request in flight"

        client.join(timeout=30)
        assert answer and answer[0].status == 200
        reply = answer[0].json()["choices"][0]["message"]["content"]
        assert reply == echoed(pii_prompt(tag)), "the reply came back whole, with the values restored"
        assert proxy.process.wait(timeout=30) == 0
        assert "drained: no request in flight" in proxy.log()
    finally:
        proxy.stop()

    # The decision was committed before the answer went out, and the store is whole after the exit.
    listed = subprocess.run([sys.executable, "-m", "guard.cli", "audit", "list", "--jsonl",
                             "--audit-db", f"sqlite:///{tmp_path / 'audit.db'}"],
                            capture_output=True, text=True, timeout=60, check=True).stdout
    events = [json.loads(line) for line in listed.splitlines()]
    assert [e["kind"] for e in events if e["event_id"] == answer[0].headers["x-guard-event-id"]] == [
        "prompt_redacted"]
    for value in RAW_VALUES:
        assert value not in listed
