"""Logging, configured once: one JSON object per line on stdout when not a terminal, readable lines on one.

Everything the proxy says goes through one structlog processor chain: guard's own events and, through
:class:`StructlogHandler`, Python's ``logging`` (mitmproxy's own log, the libraries), so a SIEM reading
stdout never meets a line that is not JSON. Every line has one timestamp, ``time`` (an inspection
event's own time when it has one). ``ecs`` renames the fields to the Elastic Common Schema.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog

LOG_FORMATS = ("auto", "json", "ecs", "console")
ECS_VERSION = "8.11.0"

# mitmproxy's advice for its own command line ("--mode regular@8082") means nothing to a guard user.
_MITMPROXY_HINT = re.compile(r"\s*Try specifying a different port by using `--mode [^`]*`\.?")
_GUARD_HINT = " (choose another port with --listen-port or GUARD_LISTEN_PORT)"

# Inspection event fields -> Elastic Common Schema (https://www.elastic.co/guide/en/ecs/current/).
# What ECS has no field for goes under guard.*.
ECS_FIELDS = {
    "time": "@timestamp",
    "level": "log.level",
    "logger": "log.logger",
    "event": "message",
    "event_id": "event.id",
    "user": "user.name",
    "client": "client.address",
    "host": "url.domain",
    "path": "url.path",
    "method": "http.request.method",
    "request_bytes": "http.request.body.bytes",
    "node": "host.name",
}


def configure_logging(level: int = logging.INFO, fmt: str = "auto", stream: TextIO | None = None) -> None:
    """One processor chain for every line the process writes; call once at start-up.

    ``fmt``: ``auto`` (JSON unless ``stream`` is a terminal), ``json``, ``ecs`` or ``console``.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; choose one of {', '.join(LOG_FORMATS)}")
    stream = stream or sys.stdout
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_time,
    ]
    if fmt == "ecs":
        processors.append(to_ecs)
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty()) if fmt == "console"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,  # configure_logging may run again (tests, a second proxy)
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StructlogHandler)]:
        root.removeHandler(handler)
    root.addHandler(StructlogHandler(level))
    root.setLevel(level)


def add_time(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The one timestamp: an inspection event keeps its own ``time``; any other line gets now."""
    event.setdefault("time", datetime.now(UTC).isoformat(timespec="milliseconds"))
    return event


def to_ecs(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Rename the fields to the Elastic Common Schema (dotted keys, as ecs-logging writes them)."""
    out: dict[str, Any] = {"@timestamp": event.pop("time", None)}
    kind = event.get("kind") or (event.get("event") if "event_id" in event else None)
    for key, value in event.items():
        if key in ECS_FIELDS:
            out[ECS_FIELDS[key]] = value
        elif key == "latency_ms":
            out["event.duration"] = int(float(value) * 1_000_000)  # ECS durations are nanoseconds
        else:
            out[f"guard.{key}"] = value
    if kind:
        out["event.action"] = kind
        out["event.kind"] = "event"
    out["ecs.version"] = ECS_VERSION
    return out


def without_mitmproxy_hints(message: str) -> str:
    return _MITMPROXY_HINT.sub(_GUARD_HINT, message)


class StructlogHandler(logging.Handler):
    """Python ``logging`` records (mitmproxy's log, libraries) as structlog lines in the one format."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = without_mitmproxy_hints(record.getMessage())
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.levelno >= logging.ERROR:
                fields["exception"] = self.format(record).partition("\n")[2]
            structlog.get_logger().log(record.levelno, message, **fields)
        except Exception:  # a broken log line must not break the proxy
            self.handleError(record)
