"""Operations endpoints of the proxy process: Prometheus metrics, liveness and readiness.

The metrics are built from the canonical inspection events, so they carry what an event carries
and less: decisions, services, entity types, failure classes, counts and latencies. Never a value,
a user or a prompt. The HTTP server listens on its own address, apart from the proxy port, and
runs in a daemon thread; it knows nothing of mitmproxy (readiness is a callable the addon supplies).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    make_wsgi_app,
)

from guard.audit.events import InspectionEvent

# From a short regex-only prompt (~1 ms) to the default inspection timeout (10 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Why the proxy should not get traffic now, or None when it is ready.
Readiness = Callable[[], str | None]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class GuardMetrics:
    """The proxy's metrics, in a registry of their own (independent instances, independent tests)."""

    def __init__(self, queue_depth: Callable[[], int] | None = None,
                 audit_healthy: Callable[[], bool] | None = None,
                 audit_journal: Callable[[], str | None] | None = None) -> None:
        # A *_created series beside every counter and histogram doubles what is scraped and says only
        # when the process started, which process_start_time_seconds says once.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)   # process_cpu_seconds_total, memory, open fds, start time
        PlatformCollector(registry=self.registry)  # python_info
        self.requests = Counter(
            "guard_requests", "Inspected AI requests by decision.",
            ["decision", "service"], registry=self.registry)
        self.entities = Counter(
            "guard_entities", "Detected entities by type (counts only, never values).",
            ["entity_type", "service"], registry=self.registry)
        self.inspection_seconds = Histogram(
            "guard_inspection_seconds", "Time from receiving a request to the guard's decision.",
            ["service"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.failures = Counter(
            "guard_inspection_failures", "Failed inspections (the request failed closed unless fail-open).",
            ["service", "reason"], registry=self.registry)
        self.queue_depth = Gauge(
            "guard_inspection_queue_depth", "Inspections submitted to the worker pool and not yet finished.",
            registry=self.registry)
        self.queue_depth.set_function(lambda: float(queue_depth()) if queue_depth else 0.0)
        self.workers_replaced = Counter(
            "guard_inspection_workers_replaced", "Inspection workers replaced after dying (killed, out of "
            "memory) or overrunning guard_timeout.", ["reason"], registry=self.registry)
        self.policy_info = Gauge(
            "guard_policy_info", "The policy in force (value 1).", ["name", "version"],
            registry=self.registry)
        self.policy_reload_failures = Counter(
            "guard_policy_reload_failures", "Policy reloads rejected (the previous policy stayed in force).",
            registry=self.registry)
        self.audit_writer_healthy = Gauge(
            "guard_audit_writer_healthy", "1 while the audit writer runs and reaches the store; 0 while it "
            "is down or spooling events to the journal (requests fail closed if the journal fails too).",
            registry=self.registry)
        self.audit_writer_healthy.set_function(lambda: 1.0 if audit_healthy and audit_healthy() else 0.0)
        self.audit_journal_bytes = Gauge(
            "guard_audit_journal_bytes", "Size of the audit journal: events kept there wait for the store "
            "to answer again (0 when none wait).", registry=self.registry)
        self.audit_journal_bytes.set_function(
            lambda: float(file_size(audit_journal() if audit_journal else None)))

    def observe(self, event: InspectionEvent) -> None:
        self.requests.labels(decision=event.decision, service=event.service).inc()
        for entity_type, count in event.entities.items():
            self.entities.labels(entity_type=entity_type, service=event.service).inc(count)
        self.inspection_seconds.labels(service=event.service).observe(event.latency_ms / 1000)
        if event.decision == "error":
            self.failures.labels(service=event.service, reason=event.error or "unknown").inc()

    def worker_replaced(self, reason: str) -> None:
        self.workers_replaced.labels(reason=reason).inc()

    def policy_reload_failed(self) -> None:
        self.policy_reload_failures.inc()

    def set_policy(self, name: str, version: str) -> None:
        self.policy_info.clear()  # only the policy now in force is reported
        self.policy_info.labels(name=name, version=version).set(1)


def file_size(path: str | None) -> int:
    """Bytes in ``path``; 0 when there is no such file (an empty journal is removed or never made)."""
    try:
        return os.stat(path).st_size if path else 0
    except OSError:
        return 0


def parse_listen_address(value: str) -> tuple[str, int]:
    """'127.0.0.1:9100' or '[::1]:9100' -> (host, port)."""
    host, sep, port_text = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"not HOST:PORT: {value!r} (examples: 127.0.0.1:9100, [::1]:9100, 0.0.0.0:9100)")
    return host, int(port_text)


# ---------------------------------------------------------------- the HTTP server

class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes come every few seconds: not worth a log line each."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper must not hold up shutdown


class OpsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on their own address, served from a daemon thread."""

    def __init__(self, host: str, port: int, metrics: GuardMetrics, readiness: Readiness) -> None:
        self.host = host
        self.port = port
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._readiness = readiness
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> OpsServer:
        """Bind and serve; an address in use raises OSError here, not later in the thread."""
        family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][0]

        class Server(_ThreadingServer):
            address_family = family  # IPv6 listen addresses need an AF_INET6 socket

        self._server = make_server(self.host, self.port, self._app, Server, _QuietHandler)
        self.port = self._server.server_port  # the real one when 0 was asked for
        self._thread = threading.Thread(target=self._server.serve_forever, name="guard-ops", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in ("/metrics", "/healthz", "/readyz"):
            return _reply(start_response, "404 Not Found", "text/plain", b"not found\n")
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", "text/plain", b"GET only\n",
                          [("Allow", "GET, HEAD")])
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            return _reply(start_response, "200 OK", "text/plain", b"ok\n")
        try:
            reason = self._readiness()
        except Exception as e:  # a broken check means "not ready", never a crashed probe
            reason = f"readiness check failed: {type(e).__name__}"
        if reason is None:
            return _reply(start_response, "200 OK", "application/json", b'{"ready": true}\n')
        body = json.dumps({"ready": False, "reason": reason}).encode() + b"\n"
        return _reply(start_response, "503 Service Unavailable", "application/json", body)


def _reply(start_response: StartResponse, status: str, content_type: str, body: bytes,
           extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    headers = [("Content-Type", f"{content_type}; charset=utf-8"), ("Content-Length", str(len(body))),
               ("Cache-Control", "no-store"), *(extra or [])]
    start_response(status, headers)
    return [body]
