"""The ops listener of a real ``guard proxy``: metrics move with traffic, health and readiness answer."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from guard.audit.store import AuditStore
from tests.e2e.helpers import (
    RAW_VALUES,
    GuardProxy,
    assert_never_sent,
    assert_redacted_upstream,
    classified_prompt,
    curl,
    free_port,
    nonce,
    pii_prompt,
    write_policy,
)
from tests.e2e.upstream import UpstreamServer
from tests.processes import guard_processes, state

pytestmark = pytest.mark.usefixtures("curl_available")

SERVICE = "e2e-openai"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def ops_proxy(tmp_path_factory: pytest.TempPathFactory,
              openai_upstream: UpstreamServer) -> Iterator[tuple[GuardProxy, str]]:
    """A proxy of its own with the ops listener on; yields it and the listener's base URL."""
    directory = tmp_path_factory.mktemp("guard-proxy-ops")
    ops_port = free_port()
    proxy = GuardProxy(confdir=directory, policy=write_policy(directory / "policy.yaml",
                                                              {SERVICE: ("openai", openai_upstream)}),
                       log_path=directory / "proxy.log", options=(f"guard_ops_listen=127.0.0.1:{ops_port}",))
    proxy.start()
    try:
        yield proxy, _wait_for_ops(f"http://127.0.0.1:{ops_port}", proxy.log_path)
    finally:
        proxy.stop()


def _wait_for_ops(base: str, log: Path, timeout: float = 20) -> str:
    """The listener starts right after the workers' start-up line: give it a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _get(f"{base}/healthz")
            return base
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"ops listener did not come up:\n{log.read_text(errors='replace')[-3000:]}")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _samples(base: str) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    status, text = _get(f"{base}/metrics")
    assert status == 200
    values = {(s.name, frozenset(s.labels.items())): s.value
              for family in text_string_to_metric_families(text) for s in family.samples}
    return text, values


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _chat(prompt: str) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
                      ensure_ascii=False).encode()


def test_metrics_move_with_redacted_and_blocked_requests(ops_proxy: tuple[GuardProxy, str],
                                                         openai_upstream: UpstreamServer) -> None:
    proxy, base = ops_proxy
    _, before = _samples(base)
    url = f"{openai_upstream.base_url}/v1/chat/completions"

    redacted_tag, blocked_tag = nonce(), nonce()
    assert curl(proxy, url, _chat(pii_prompt(redacted_tag)), JSON).status == 200
    assert_redacted_upstream(openai_upstream, redacted_tag)
    assert curl(proxy, url, _chat(classified_prompt(blocked_tag)), JSON).status == 403
    assert_never_sent(openai_upstream, blocked_tag)

    text, after = _samples(base)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("guard_requests_total", decision="redact", service=SERVICE) == 1
    assert moved("guard_requests_total", decision="block", service=SERVICE) == 1
    assert moved("guard_entities_total", entity_type="TW_NATIONAL_ID", service=SERVICE) == 1
    assert moved("guard_inspection_seconds_count", service=SERVICE) == 2
    assert _value(after, "guard_inspection_queue_depth") == 0
    assert any(name == "guard_policy_info" and value == 1 for (name, _), value in after.items())
    for value in RAW_VALUES:
        assert value not in text, "a raw identifier appeared in the metrics"
    assert redacted_tag not in text and blocked_tag not in text  # nor any other prompt text


def test_health_and_readiness(ops_proxy: tuple[GuardProxy, str]) -> None:
    _, base = ops_proxy
    assert _get(f"{base}/healthz") == (200, "ok\n")
    status, body = _get(f"{base}/readyz")
    assert status == 200 and json.loads(body) == {"ready": True}
    assert _get(f"{base}/nothing-here")[0] == 404


def test_a_worker_killed_mid_inspection_fails_that_request_closed_and_is_replaced(
        ops_proxy: tuple[GuardProxy, str], openai_upstream: UpstreamServer) -> None:
    proxy, base = ops_proxy
    _, before = _samples(base)
    url = f"{openai_upstream.base_url}/v1/chat/completions"
    tag = nonce()
    long_prompt = pii_prompt(tag) * 5000  # seconds of inspection: time to kill the worker doing it
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(curl, proxy, url, _chat(long_prompt), JSON)
        (worker,) = _busy_worker(proxy)
        os.kill(worker, signal.SIGKILL)
        result = answer.result(timeout=60)

    assert result.status == 403 and "檢查程序發生錯誤" in result.body.decode()
    assert_never_sent(openai_upstream, tag)
    _, after = _samples(base)
    assert (_value(after, "guard_inspection_workers_replaced_total", reason="died")
            - _value(before, "guard_inspection_workers_replaced_total", reason="died")) == 1
    # the replacement inspects the next request as usual
    next_tag = nonce()
    assert curl(proxy, url, _chat(pii_prompt(next_tag)), JSON).status == 200
    assert_redacted_upstream(openai_upstream, next_tag)


def test_a_killed_audit_writer_is_replaced_and_the_waiting_request_still_goes_out_once_kept(
        ops_proxy: tuple[GuardProxy, str], openai_upstream: UpstreamServer) -> None:
    proxy, _ = ops_proxy
    url = f"{openai_upstream.base_url}/v1/chat/completions"
    assert curl(proxy, url, _chat(pii_prompt(nonce())), JSON).status == 200
    (writer,) = _audit_writers(proxy)
    tag = nonce()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        os.kill(writer, signal.SIGSTOP)  # it keeps nothing now: the request must wait, not go out
        try:
            answer = pool.submit(curl, proxy, url, _chat(pii_prompt(tag)), JSON)
            time.sleep(1.0)
            assert not answer.done() and not openai_upstream.received(tag)
        finally:
            os.kill(writer, signal.SIGKILL)
        result = answer.result(timeout=60)

    assert result.status == 200
    assert_redacted_upstream(openai_upstream, tag)  # sent once, after its event was kept
    (replacement,) = _audit_writers(proxy)
    assert replacement != writer
    event_id = result.headers.get("x-guard-event-id")
    store = AuditStore(f"sqlite:///{proxy.confdir / 'audit.db'}")
    try:
        assert [e["event_id"] for e in store.events()].count(event_id) == 1 and store.verify().intact
    finally:
        store.close()


def _audit_writers(proxy: GuardProxy) -> list[int]:
    assert proxy.process is not None
    return guard_processes(proxy.process.pid)[1]


def _busy_worker(proxy: GuardProxy, timeout: float = 20) -> list[int]:
    """The proxy's inspection worker once it is using the CPU (inspecting), by its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proxy.process is not None
        workers, _ = guard_processes(proxy.process.pid)
        busy = [pid for pid in workers if state(pid) == "R"]
        if busy:
            return busy
        time.sleep(0.05)
    raise AssertionError("no inspection worker became busy")

