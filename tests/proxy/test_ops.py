"""Operations endpoints: metric values from events, and a real ops server answered over HTTP."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from guard.addon import Guard
from guard.audit import EventKind, InspectionEvent
from guard.ops import GuardMetrics, OpsServer, parse_listen_address


def _event(decision: str, service: str = "openai", entities: dict[str, int] | None = None,
           latency_ms: float = 12.0, error: str = "") -> InspectionEvent:
    kind = {"allow": EventKind.ALLOWED, "redact": EventKind.REDACTED, "block": EventKind.BLOCKED,
            "warn": EventKind.WARNED, "error": EventKind.FAILED}[decision]
    return InspectionEvent(event_id="20260101-000000000000", kind=kind, decision=decision, service=service,
                           user="chen.clerk", entities=entities or {}, latency_ms=latency_ms, error=error)


# ---------------------------------------------------------------- GuardMetrics

def test_observe_counts_decisions_entities_latency_and_failures() -> None:
    metrics = GuardMetrics()
    metrics.observe(_event("redact", entities={"TW_NATIONAL_ID": 2, "PHONE_NUMBER": 1}, latency_ms=3.0))
    metrics.observe(_event("redact", entities={"TW_NATIONAL_ID": 1}, latency_ms=40.0))
    metrics.observe(_event("block", service="gemini", entities={"TW_CLASSIFIED_MARKING": 1}))
    metrics.observe(_event("error", error="inspection_timeout", latency_ms=10_000.0))
    value = metrics.registry.get_sample_value

    assert value("guard_requests_total", {"decision": "redact", "service": "openai"}) == 2
    assert value("guard_requests_total", {"decision": "block", "service": "gemini"}) == 1
    assert value("guard_requests_total", {"decision": "allow", "service": "openai"}) is None
    assert value("guard_entities_total", {"entity_type": "TW_NATIONAL_ID", "service": "openai"}) == 3
    assert value("guard_entities_total", {"entity_type": "PHONE_NUMBER", "service": "openai"}) == 1
    assert value("guard_inspection_failures_total",
                 {"service": "openai", "reason": "inspection_timeout"}) == 1
    assert value("guard_inspection_seconds_count", {"service": "openai"}) == 3
    assert value("guard_inspection_seconds_sum", {"service": "openai"}) == pytest.approx(10.043)
    # 3 ms falls in the 5 ms bucket, 40 ms in the 50 ms one, 10 s only in the last finite bucket.
    assert value("guard_inspection_seconds_bucket", {"service": "openai", "le": "0.0025"}) == 0
    assert value("guard_inspection_seconds_bucket", {"service": "openai", "le": "0.005"}) == 1
    assert value("guard_inspection_seconds_bucket", {"service": "openai", "le": "0.05"}) == 2
    assert value("guard_inspection_seconds_bucket", {"service": "openai", "le": "5.0"}) == 2
    assert value("guard_inspection_seconds_bucket", {"service": "openai", "le": "10.0"}) == 3


def test_failures_are_counted_only_for_errors() -> None:
    metrics = GuardMetrics()
    metrics.observe(_event("allow", error="ignored"))
    assert metrics.registry.get_sample_value(
        "guard_inspection_failures_total", {"service": "openai", "reason": "ignored"}) is None


def test_instances_do_not_share_a_registry() -> None:
    first, second = GuardMetrics(), GuardMetrics()
    first.observe(_event("block"))
    assert second.registry.get_sample_value(
        "guard_requests_total", {"decision": "block", "service": "openai"}) is None


def test_queue_depth_reads_the_callback_at_scrape_time() -> None:
    depth = [0]
    metrics = GuardMetrics(queue_depth=lambda: depth[0])
    assert metrics.registry.get_sample_value("guard_inspection_queue_depth") == 0
    depth[0] = 7
    assert metrics.registry.get_sample_value("guard_inspection_queue_depth") == 7


def test_no_created_duplicates_and_process_metrics_are_there() -> None:
    metrics = GuardMetrics()
    metrics.observe(_event("redact", entities={"TW_NATIONAL_ID": 1}))
    names = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    assert not [name for name in names if name.endswith("_created")]
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
            "process_start_time_seconds"} <= names


def test_every_metric_is_documented_in_the_readme() -> None:
    from tests.e2e.helpers import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for family in GuardMetrics().registry.collect():
        if family.name.startswith("guard_"):
            assert f"`{family.name}" in readme, family.name
    for decision in ("allow", "warn", "redact", "block", "error"):
        assert f"`{decision}`" in readme


def test_audit_writer_and_journal_health(tmp_path: Path) -> None:
    healthy, journal = [True], tmp_path / "journal.jsonl"
    metrics = GuardMetrics(audit_healthy=lambda: healthy[0], audit_journal=lambda: str(journal))
    value = metrics.registry.get_sample_value
    assert value("guard_audit_writer_healthy") == 1 and value("guard_audit_journal_bytes") == 0
    healthy[0] = False
    journal.write_text('{"event_id": "x"}\n', encoding="utf-8")  # the store is down: events spool here
    assert value("guard_audit_writer_healthy") == 0
    assert value("guard_audit_journal_bytes") == journal.stat().st_size
    assert GuardMetrics().registry.get_sample_value("guard_audit_writer_healthy") == 0  # no writer yet


def test_policy_info_reports_only_the_policy_in_force() -> None:
    metrics = GuardMetrics()
    metrics.set_policy("default", "2026.1")
    metrics.set_policy("default", "2026.2")
    value = metrics.registry.get_sample_value
    assert value("guard_policy_info", {"name": "default", "version": "2026.2"}) == 1
    assert value("guard_policy_info", {"name": "default", "version": "2026.1"}) is None


# ---------------------------------------------------------------- parse_listen_address

@pytest.mark.parametrize(("text", "address"), [
    ("127.0.0.1:9100", ("127.0.0.1", 9100)),
    ("0.0.0.0:9100", ("0.0.0.0", 9100)),
    ("[::1]:9100", ("::1", 9100)),
    ("localhost:65535", ("localhost", 65535)),
    (" 127.0.0.1:9100 ", ("127.0.0.1", 9100)),
])
def test_parse_listen_address_valid(text: str, address: tuple[str, int]) -> None:
    assert parse_listen_address(text) == address


@pytest.mark.parametrize("text", ["9100", ":9100", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
                                  "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:http", "[::1]"])
def test_parse_listen_address_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="not HOST:PORT"):
        parse_listen_address(text)


# ---------------------------------------------------------------- the server, over real HTTP

@dataclass
class Reply:
    status: int
    content_type: str
    body: str


def _get(server: OpsServer, path: str) -> Reply:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as response:
            return Reply(response.status, response.headers["content-type"], response.read().decode())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.headers["content-type"], e.read().decode())


@pytest.fixture()
def readiness() -> list[str | None]:
    return [None]  # the reason the test's proxy is not ready; None = ready


@pytest.fixture()
def ops(readiness: list[str | None]) -> Iterator[tuple[OpsServer, GuardMetrics]]:
    metrics = GuardMetrics()
    server = OpsServer("127.0.0.1", 0, metrics, lambda: readiness[0]).start()
    yield server, metrics
    server.stop()


def test_metrics_endpoint_serves_prometheus_text(ops: tuple[OpsServer, GuardMetrics]) -> None:
    server, metrics = ops
    metrics.observe(_event("redact", entities={"TW_NATIONAL_ID": 1}))
    reply = _get(server, "/metrics")
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain; version=")
    assert 'guard_requests_total{decision="redact",service="openai"} 1.0' in reply.body
    assert 'guard_entities_total{entity_type="TW_NATIONAL_ID",service="openai"} 1.0' in reply.body
    assert "# TYPE guard_inspection_seconds histogram" in reply.body
    assert "chen.clerk" not in reply.body  # users are not labels


def test_healthz_is_ok_even_when_not_ready(ops: tuple[OpsServer, GuardMetrics],
                                           readiness: list[str | None]) -> None:
    readiness[0] = "policy not loaded"
    reply = _get(ops[0], "/healthz")
    assert (reply.status, reply.body) == (200, "ok\n")


def test_readyz_follows_the_readiness_callable(ops: tuple[OpsServer, GuardMetrics],
                                               readiness: list[str | None]) -> None:
    server = ops[0]
    ready = _get(server, "/readyz")
    assert ready.status == 200 and json.loads(ready.body) == {"ready": True}
    readiness[0] = "shutting down"
    draining = _get(server, "/readyz")
    assert draining.status == 503
    assert draining.content_type.startswith("application/json")
    assert json.loads(draining.body) == {"ready": False, "reason": "shutting down"}
    readiness[0] = None
    assert _get(server, "/readyz").status == 200


def test_readyz_is_503_when_the_check_itself_fails() -> None:
    def broken() -> str | None:
        raise RuntimeError("boom")

    server = OpsServer("127.0.0.1", 0, GuardMetrics(), broken).start()
    try:
        reply = _get(server, "/readyz")
    finally:
        server.stop()
    assert reply.status == 503
    assert json.loads(reply.body)["reason"] == "readiness check failed: RuntimeError"


@pytest.mark.parametrize("path", ["/", "/metrics/", "/health", "/readyz/extra", "/favicon.ico"])
def test_unknown_paths_are_404(ops: tuple[OpsServer, GuardMetrics], path: str) -> None:
    assert _get(ops[0], path).status == 404


def test_post_is_refused(ops: tuple[OpsServer, GuardMetrics]) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{ops[0].port}/readyz", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 405


def test_stop_releases_the_port() -> None:
    server = OpsServer("127.0.0.1", 0, GuardMetrics(), lambda: None).start()
    port = server.port
    server.stop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # raises OSError (address in use) if the port were still held
    again = OpsServer("127.0.0.1", port, GuardMetrics(), lambda: None).start()
    again.stop()


def test_a_port_in_use_fails_at_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            OpsServer("127.0.0.1", taken.getsockname()[1], GuardMetrics(), lambda: None).start()


# ---------------------------------------------------------------- the addon's option and readiness

@pytest.mark.parametrize("value", ["9100", "127.0.0.1:", "127.0.0.1:99999"])
def test_bad_ops_listen_option_names_the_option(value: str) -> None:
    with taddons.context(Guard()) as tctx, pytest.raises(exceptions.OptionsError, match="guard_ops_listen"):
        tctx.configure(tctx.master.addons.get("guard"), guard_ops_listen=value)


def test_addon_is_not_ready_until_its_pool_runs_and_again_once_shutting_down() -> None:
    guard = Guard()
    assert guard.not_ready() == "policy not loaded"
    with taddons.context(guard) as tctx:
        tctx.configure(guard, guard_workers=0)  # loads the default policy; the pool starts only in running()
        assert guard.not_ready() == "inspection workers not started"
        guard.pool = object()  # type: ignore[assignment]  # stands in for a started pool
        assert guard.not_ready() is None
        guard.sink.healthy = lambda: False  # type: ignore[attr-defined]  # a store that lost its database
        assert guard.not_ready() == "audit sink unhealthy"
        del guard.sink.healthy  # type: ignore[attr-defined]
        guard.pool = None
        guard.done()
        assert guard.not_ready() == "shutting down"
