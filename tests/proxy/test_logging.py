"""The log stream a SIEM reads: one JSON object per line, mitmproxy's own log included, one timestamp,
Elastic Common Schema names on request, and no mitmproxy command-line advice in guard's words."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from guard.audit.events import EventKind, InspectionEvent, LogSink
from guard.audit.logging import ECS_VERSION, configure_logging


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def event() -> InspectionEvent:
    return InspectionEvent(event_id="20261128-abc", kind=EventKind.BLOCKED, decision="block", user="alice",
                           client="10.0.0.7", service="openai-api", host="api.openai.com",
                           path="/v1/chat/completions", method="POST", entities={"CLASSIFICATION_MARKER": 1},
                           latency_ms=12.5, request_bytes=321)


@pytest.mark.usefixtures("restore_logging")
def test_library_and_mitmproxy_records_become_json_lines_with_one_timestamp() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    logging.getLogger().setLevel(logging.DEBUG)  # as mitmproxy's main() sets it
    logging.getLogger("mitmproxy.proxy.server").info("[127.0.0.1:50000] client connect")
    logging.getLogger("guard.addon").error("policy reload rejected, keeping default")
    logging.getLogger("mitmproxy.proxy.server").debug("not written at info")
    LogSink().record(event())
    records = lines(out)
    assert [r["event"] for r in records] == ["[127.0.0.1:50000] client connect",
                                              "policy reload rejected, keeping default", "prompt_blocked"]
    assert records[0]["logger"] == "mitmproxy.proxy.server" and records[1]["level"] == "error"
    for record in records:
        time_keys = {k for k in record if "time" in k and k != "latency_ms"}
        assert time_keys == {"time"}, record
    assert records[2]["time"] == event().time[:19] + records[2]["time"][19:]  # the event keeps its own time


@pytest.mark.usefixtures("restore_logging")
def test_ecs_names() -> None:
    out = io.StringIO()
    configure_logging(fmt="ecs", stream=out)
    inspection = event()
    LogSink().record(inspection)
    logging.getLogger("mitmproxy").warning("something")
    blocked, other = lines(out)
    assert blocked["@timestamp"] == inspection.time and "time" not in blocked
    assert blocked["event.action"] == "prompt_blocked" and blocked["event.id"] == "20261128-abc"
    assert blocked["user.name"] == "alice" and blocked["client.address"] == "10.0.0.7"
    assert blocked["url.domain"] == "api.openai.com" and blocked["url.path"] == "/v1/chat/completions"
    assert blocked["http.request.method"] == "POST" and blocked["http.request.body.bytes"] == 321
    assert blocked["event.duration"] == 12_500_000                       # nanoseconds
    assert blocked["guard.decision"] == "block" and blocked["guard.entities"] == {"CLASSIFICATION_MARKER": 1}
    assert blocked["log.level"] == "info" and blocked["ecs.version"] == ECS_VERSION
    assert other["message"] == "something" and other["log.logger"] == "mitmproxy" and "@timestamp" in other


@pytest.mark.usefixtures("restore_logging")
def test_a_terminal_gets_readable_lines() -> None:
    out = Terminal()
    configure_logging(stream=out)
    logging.getLogger("mitmproxy").info("HTTP(S) proxy listening at 127.0.0.1:8080.")
    text = out.getvalue()
    assert "HTTP(S) proxy listening at 127.0.0.1:8080." in text and not text.startswith("{")


@pytest.mark.usefixtures("restore_logging")
def test_mitmproxy_command_line_advice_is_replaced_by_guards() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    logging.getLogger("mitmproxy.proxy.mode_servers").error(
        "HTTP(S) proxy failed to listen on 127.0.0.1:8080 with [Errno 98] Address already in use\n"
        "Try specifying a different port by using `--mode regular@8082`.")
    message = lines(out)[0]["event"]
    assert "--mode" not in message and "regular@" not in message
    assert "Address already in use" in message and "--listen-port" in message


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="ecs"):
        configure_logging(fmt="xml", stream=io.StringIO())
