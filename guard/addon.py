"""The mitmproxy addon: inspect, redact or block prompts to generative-AI services in flight.

Only hosts in the policy's service catalogue are opened; TLS to every other host passes through
undecrypted. For an AI request the body is decoded, the request format pulls out the user-visible
texts, the worker pool runs the engine, and the verdict is applied before anything leaves:

    block   answered here in the client's native error shape; the service is never contacted
    redact  only the affected strings are rewritten; placeholders are restored in the reply
    warn    held until the user states a reason (查詢事由), then sent and the reason recorded
    allow   forwarded byte for byte

When inspection fails (bad body, timeout, oversized, worker crash) nothing un-inspected is sent,
unless the service is explicitly ``fail_mode: open``. Load it with ``guard proxy`` or
``mitmdump -s guard/addon.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import time
import typing
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import h11
from h11._readers import ChunkedReader
from h11._receivebuffer import ReceiveBuffer
from mitmproxy import ctx, exceptions, http, tls
from mitmproxy.proxy.layers.http import _http1

from guard import image_parts, pipeline
from guard.audit import AuditSink, EventKind, InspectionEvent, LogSink, new_event_id
from guard.audit.journal import Journal
from guard.audit.keys import AuditKeyError, AuditKeys, load_keys
from guard.audit.masking import FoundAt, snippets
from guard.audit.process import AuditProcess, AuditSettings
from guard.audit.store import DEFAULT_URL, AuditStore, AuditStoreError, engine_for, safe_url
from guard.audit.writer import AuditUnavailable, AuditWriter, PendingEvent
from guard.confirm import HeldRequest, HeldRequests, Origin
from guard.formats import format_for, websocket
from guard.formats._reply import is_page_load, streams_by_endpoint
from guard.formats.base import (
    AmbiguousRequest,
    BodyTooLarge,
    GuardFormatError,
    NativeResponse,
    NotRewritable,
    RequestFormat,
    UnreadableContent,
)
from guard.formats.restore import (
    RecentPlaceholders,
    StreamRestorer,
    WsMessageRestorer,
    restore_body,
    stream_restorer,
)
from guard.formats.uploads import reads_documents
from guard.notice import BlockNotice, Reason, render_block_page, render_confirm_expired_page
from guard.ops import GuardMetrics, OpsServer, parse_listen_address
from guard.policy import Policy, PolicyError, ServiceSpec, load_policy
from guard.verdict import Decision, Finding, Verdict
from guard.workers import InspectionPool

REASON_HEADER = pipeline.REASON_HEADER
REASON_IN_TEXT = pipeline.REASON_IN_TEXT  # what the warn notice tells users to type (guard.notice)
MIN_REASON_CHARS = pipeline.MIN_REASON_CHARS
# Where the browser confirm form posts its token and reason; answered by the guard, never sent upstream.
CONFIRM_PATH = "/.guard/confirm"
CONFIRMED_REASON = "guard_confirmed_reason"  # flow.metadata key: the reason typed into the confirm form
THUMBNAILS = "guard_thumbnails"  # flow.metadata key: the masked thumbnails of the request's images
DEFAULT_JOURNAL = "guard-audit-journal.jsonl"
EVENT_HEADER = "x-guard-event-id"  # on every inspected answer: the event reference for appeals

# The events one hook invocation produced, kept until they are committed to the audit store. A
# context variable, because hooks of different flows interleave on the one event loop.
_hook_events: contextvars.ContextVar[list[PendingEvent] | None] = contextvars.ContextVar(
    "guard_hook_events", default=None)


# ---------------------------------------------------------------- small pure parsers (ValueError)

def parse_size(value: str) -> int:
    """'16m' -> 16777216; accepts k, m, g suffixes (binary)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?)b?\s*", value.lower())
    if not match:
        raise ValueError(f"not a size: {value!r} (examples: 512k, 16m, 1g)")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2)]


UserNetworks = tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]


def parse_user_map(text: str, source: str = "user map") -> UserNetworks:
    """Lines of ``ADDRESS-or-CIDR USER`` (``#`` comments); the most specific network wins."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{source}:{number}: expected 'ADDRESS USER', got {len(parts)} fields")
        try:
            network = ipaddress.ip_network(parts[0], strict=False)
        except ValueError:
            raise ValueError(f"{source}:{number}: not an IP address or network: {parts[0]!r}") from None
        entries.append((network, parts[1]))
    entries.sort(key=lambda e: e[0].prefixlen, reverse=True)
    return tuple(entries)


def user_for_address(users: UserNetworks, address: str) -> str:
    if not users:  # no user map: nothing to parse the address for
        return ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    for network, user in users:
        if ip.version == network.version and ip in network:
            return user
    return ""


def wants_stream(flow: http.HTTPFlow, body: bytes) -> bool:
    """Does the client expect an event stream (so a block reply must be one too)?"""
    if "text/event-stream" in flow.request.headers.get("accept", ""):
        return True
    if streams_by_endpoint(flow.request.path):
        return True
    try:
        data = json.loads(body) if body[:1] in (b"{", b"[") else None
    except (ValueError, RecursionError):  # a 100,000-deep body still gets its proper block reply
        return False
    return isinstance(data, dict) and data.get("stream") is True


def is_navigation(flow: http.HTTPFlow) -> bool:
    """A page load (form post) in a browser: answer with an HTML page, not an API error."""
    req = flow.request
    return is_page_load(req.method, req.path, req.headers, req.headers.get("content-type", ""))


def may_hold_placeholders(body: bytes, placeholders: Mapping[str, str]) -> bool:
    """Could restoring ``body`` change it? Every spelling the restorer knows (raw, JSON- or HTML-escaped,
    percent-encoded) in a UTF-8 body writes a placeholder's name (``PERSON_1``) in ASCII as it is; only
    a JSON escape (``\\u00XX``) could spell one of its letters otherwise. Without either, the reply goes
    on untouched and unparsed."""
    if b"\\u00" in body:
        return True
    return any(p.strip("<>").encode() in body for p in placeholders)


# ---------------------------------------------------------------- HTTP/1 trailers

class _TrailerDroppingReader(ChunkedReader):
    """A chunked-body reader that drops trailer fields instead of handing them on.

    mitmproxy's HTTP/1 layer raises NotImplementedError on a chunked body's trailer fields inside the
    connection handler, which leaves the client hanging; it cannot forward them over HTTP/1 either. So
    they are dropped where they are read: the request gets its proper answer (inspected, then
    forwarded, redacted or blocked), and nothing in the trailers reaches the service un-inspected.
    """

    def __call__(self, buf: ReceiveBuffer) -> h11.Data | h11.EndOfMessage | None:
        event = super().__call__(buf)
        if isinstance(event, h11.EndOfMessage) and event.headers:
            return h11.EndOfMessage()
        return event


def drop_http1_trailers() -> None:
    """Install the reader (idempotent); ``make_body_reader`` looks the class up at call time."""
    _http1.ChunkedReader = _TrailerDroppingReader  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the addon

class _Exchange:
    """What one AI request needs until its reply is done: memory only, never saved."""

    __slots__ = ("placeholders", "recent_version", "restorer", "ws_restorer")

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self.placeholders = placeholders
        self.restorer: StreamRestorer | None = None
        self.ws_restorer: WsMessageRestorer | None = None
        self.recent_version = 0  # of the user's recent map this connection restores with


class Guard:
    def __init__(self, sink: AuditSink | None = None) -> None:
        self.policy: Policy | None = None
        self.pool: InspectionPool | None = None
        self.sink: AuditSink = sink or LogSink()
        self.body_limit = 16 * 1024**2
        self.users: UserNetworks = ()
        self._exchanges: dict[str, _Exchange] = {}
        # Maps of redacted prompts whose answers arrive on another connection (Poe): memory only
        self.recent_placeholders = RecentPlaceholders()
        self.held = HeldRequests()  # warned browser requests awaiting a reason (memory only)
        self._running = False
        self._shutting_down = False
        self.journal_path: str | None = None  # the audit journal, once the writer runs (a metric reads it)
        self.metrics = GuardMetrics(queue_depth=lambda: self.pool.pending if self.pool else 0,
                                    audit_healthy=lambda: self.writer is not None and self.writer.healthy,
                                    audit_journal=lambda: self.journal_path)
        self._ops_address: tuple[str, int] | None = None
        self._ops: OpsServer | None = None
        self.writer: AuditProcess | AuditWriter | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._reloading = False
        self.timeout = 10.0
        self.reload_interval = 2.0
        self._audit_keys: AuditKeys | None = None

    # ------------------------------------------------------------ options

    def load(self, loader: object) -> None:
        drop_http1_trailers()
        add = loader.add_option  # type: ignore[attr-defined]
        add("guard_policy", str, "", "Policy YAML file; empty means the bundled default policy.")
        add("guard_policy_reload", str, "2",
            "Seconds between checks of the policy file for changes (0: reload only on SIGHUP).")
        add("guard_workers", int, 2,
            "Inspection worker processes (0: inspect in a thread of the proxy process).")
        add("guard_body_limit", str, "16m",
            "Largest request body inspected (after decompression); larger bodies are refused.")
        add("guard_timeout", str, "10",
            "Seconds one request's inspection may take before it fails closed.")
        add("guard_user_map", str, "",
            "File of 'ADDRESS-or-CIDR USER' lines naming the user behind a client.")
        add("guard_audit_db", str, "", f"Audit store URL: sqlite:///PATH or postgresql://... "
            f"(empty: {DEFAULT_URL} in the working directory).")
        add("guard_audit_journal", str, "",
            f"Spool file for events while the audit store is unreachable (empty: ./{DEFAULT_JOURNAL}).")
        add("guard_audit_key_file", str, "",
            "Audit key file (evidence encryption, chain HMAC); empty: the GUARD_AUDIT_KEY variable, "
            "and without either no evidence is kept.")
        add("guard_evidence_days", int, 30, "Days the encrypted evidence of a blocked or redacted "
            "prompt is kept before it is purged.")
        add("guard_audit_process", bool, True,
            "Write audit events from a process of its own (off: from a thread of the proxy process).")
        add("guard_node", str, "", "This proxy's name in audit events (empty: host name and process id).")
        add("guard_ops_listen", str, "",
            "HOST:PORT serving /metrics, /healthz and /readyz; empty means off.")

    def configure(self, updated: set[str]) -> None:
        if "guard_body_limit" in updated:
            try:
                self.body_limit = parse_size(ctx.options.guard_body_limit)
            except ValueError as e:
                raise exceptions.OptionsError(f"guard_body_limit: {e}") from e
        if "guard_user_map" in updated:
            path = ctx.options.guard_user_map
            try:
                self.users = parse_user_map(Path(path).read_text(encoding="utf-8"), path) if path else ()
            except (OSError, ValueError) as e:
                raise exceptions.OptionsError(f"guard_user_map: {e}") from e
        if "guard_ops_listen" in updated:
            try:
                listen = ctx.options.guard_ops_listen
                self._ops_address = parse_listen_address(listen) if listen else None
            except ValueError as e:
                raise exceptions.OptionsError(f"guard_ops_listen: {e}") from e
            if self._running:
                self._serve_ops()
        if updated & {"guard_audit_db", "guard_audit_key_file", "guard_evidence_days", "guard_audit_process"}:
            self._audit_keys = self._load_audit_config()
            if self._running:
                self._start_audit()
        # mitmproxy's --set has no float options: seconds are strings, parsed here.
        if "guard_timeout" in updated:
            self.timeout = _seconds("guard_timeout", ctx.options.guard_timeout, minimum=0.001)
        if "guard_policy_reload" in updated:
            self.reload_interval = _seconds("guard_policy_reload", ctx.options.guard_policy_reload, minimum=0)
        if updated & {"guard_policy", "guard_workers"}:
            policy = self._load(ctx.options.guard_policy or None, ctx.options.guard_workers)
            if self._running:  # a change while serving: swap in a new pool
                self._start(policy)
            else:
                self.policy = policy  # the pool starts once, in running()

    def running(self) -> None:
        """Start everything; ``guard proxy`` calls this before the proxy listens (then mitmproxy again)."""
        self._running = True
        if self._ops is None:  # first, so probes get 503 "not ready" rather than no answer while we start
            self._serve_ops()
        if self.writer is None:  # nothing may be inspected before its events can be kept
            self._start_audit()
        if self.policy is not None and self.pool is None:
            self._start(self.policy)  # logs "inspection workers": start-up scripts wait for that line
        self._watch_policy()

    @staticmethod
    def _load(policy_path: str | None, workers: int) -> Policy:
        """Load and check the policy; every problem is an OptionsError naming the file."""
        if workers < 0:
            raise exceptions.OptionsError("guard_workers must be 0 or more")
        try:
            policy = load_policy(policy_path)
            for service in policy.services:
                format_for(service.api)
        except PolicyError as e:
            raise exceptions.OptionsError(str(e)) from e
        except GuardFormatError as e:
            raise exceptions.OptionsError(f"{policy_path or 'default policy'}: {e}") from e
        return policy

    def _start(self, policy: Policy) -> None:
        """Start an inspection pool for ``policy``; keep nothing half-started."""
        policy_path = ctx.options.guard_policy or None
        workers = ctx.options.guard_workers
        pool = InspectionPool(policy_path, workers, self.metrics.worker_replaced)
        try:
            pool.wait_ready()
        except Exception as e:
            pool.close()
            raise exceptions.OptionsError(f"inspection workers could not start: {e}") from e
        old, self.pool, self.policy = self.pool, pool, policy
        if old is not None:
            old.close(finish_pending=True)
        self.metrics.set_policy(policy.name, policy.version)
        ctx.log.info(f"guard: policy {policy.name} {policy.version}, {len(policy.services)} AI services, "
                     f"{workers} inspection workers")

    # ------------------------------------------------------------ policy hot reload

    def _watch_policy(self) -> None:
        """Reload on SIGHUP, and when the policy file's content changes (checked every few seconds)."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload_policy("SIGHUP")))
        if self._watcher is None:
            self._watcher = loop.create_task(self._poll_policy_file())

    async def _poll_policy_file(self) -> None:
        seen = _fingerprint(ctx.options.guard_policy)
        while True:
            interval = self.reload_interval
            await asyncio.sleep(interval if interval > 0 else 5.0)
            current = _fingerprint(ctx.options.guard_policy)
            if interval > 0 and current != seen:
                seen = current
                await self.reload_policy("the policy file changed")

    async def reload_policy(self, why: str) -> bool:
        """Load the policy again and swap in fresh workers; a bad file leaves the running policy in force.

        New requests go to the new workers once they are ready; inspections already queued on the old
        ones finish there, so no request is dropped.
        """
        if self._reloading:
            return False
        self._reloading = True
        old = self.policy
        path = ctx.options.guard_policy or None
        workers = ctx.options.guard_workers
        try:
            policy = await asyncio.to_thread(self._load, path, workers)
            pool = InspectionPool(path, workers, self.metrics.worker_replaced)
            try:
                await asyncio.to_thread(pool.wait_ready)
            except Exception as e:
                pool.close()
                raise exceptions.OptionsError(f"inspection workers could not start: {e}") from e
        except exceptions.OptionsError as e:
            self.metrics.policy_reload_failed()
            ctx.log.error(f"guard: policy reload ({why}) rejected, keeping {old.name if old else '?'} "
                          f"{old.version if old else ''}: {e}")
            return False
        finally:
            self._reloading = False
        previous, self.pool, self.policy = self.pool, pool, policy
        if previous is not None:
            previous.close(finish_pending=True)
        self.metrics.set_policy(policy.name, policy.version)
        ctx.log.info(f"guard: policy reloaded ({why}): {policy.name} {policy.version}, "
                     f"{len(policy.services)} AI services")
        return True

    @staticmethod
    def _load_audit_config() -> AuditKeys | None:
        """Check the store URL and read the audit key now, so a mistake stops start-up."""
        if ctx.options.guard_evidence_days <= 0:
            raise exceptions.OptionsError("guard_evidence_days must be more than 0")
        try:
            engine_for(ctx.options.guard_audit_db or DEFAULT_URL).dispose()
            return load_keys(ctx.options.guard_audit_key_file or None)
        except (AuditStoreError, AuditKeyError) as e:
            raise exceptions.OptionsError(str(e)) from e

    def _start_audit(self) -> None:
        """Open the audit store (or spool until it answers) and start the writer process or thread."""
        url = ctx.options.guard_audit_db or DEFAULT_URL
        node = ctx.options.guard_node or f"{socket.gethostname()}:{os.getpid()}"
        keys = self._audit_keys
        journal = ctx.options.guard_audit_journal or DEFAULT_JOURNAL
        writer: AuditProcess | AuditWriter
        if ctx.options.guard_audit_process:
            settings = AuditSettings(url, node, journal, keys, ctx.options.guard_evidence_days)
            try:
                writer = AuditProcess(settings).start()
            except AuditUnavailable as e:
                raise exceptions.OptionsError(str(e)) from e
        else:
            writer = AuditWriter(lambda: AuditStore.open(url, keys, node), Journal(journal), keys,
                                 ctx.options.guard_evidence_days).start()
        old, self.writer, self.journal_path = self.writer, writer, journal
        if old is not None:
            old.close()
        state = "ready" if writer.healthy else f"unreachable ({writer.store_error}), spooling to {journal}"
        evidence = "kept encrypted" if keys else "not kept (no audit key)"
        where = "its own process" if isinstance(writer, AuditProcess) else "a thread"
        ctx.log.info(f"guard: audit store {safe_url(url)} {state}, written from {where}; evidence {evidence}")

    def draining(self) -> None:
        """Shutdown has begun (SIGTERM): /readyz answers 503 from now on, so balancers send no more."""
        self._shutting_down = True

    def done(self) -> None:
        self._shutting_down = True  # /readyz answers 503 from here on: the load balancer drains this node
        if self.pool is not None:
            self.pool.close()
        if self._ops is not None:
            self._ops.stop()
        if self.writer is not None:
            self.writer.close()
        if self._watcher is not None:
            self._watcher.cancel()

    # ------------------------------------------------------------ operations endpoints

    def _serve_ops(self) -> None:
        """(Re)start the operations listener on ``guard_ops_listen``; a port in use stops start-up."""
        if self._ops is not None:
            self._ops.stop()
            self._ops = None
        if self._ops_address is None:
            return
        host, port = self._ops_address
        try:
            self._ops = OpsServer(host, port, self.metrics, self.not_ready).start()
        except OSError as e:
            raise exceptions.OptionsError(f"guard_ops_listen: cannot listen on {host}:{port}: {e}") from e
        ctx.log.info(f"guard: operations endpoints on http://{host}:{self._ops.port}/metrics")

    def not_ready(self) -> str | None:
        """Why this proxy should not receive traffic now, or None when it should."""
        if self._shutting_down:
            return "shutting down"
        if self.policy is None:
            return "policy not loaded"
        if self.pool is None:
            return "inspection workers not started"
        sink_healthy = getattr(self.sink, "healthy", None)  # optional: sinks with a store can say
        if callable(sink_healthy) and not sink_healthy():
            return "audit sink unhealthy"
        return None

    # ------------------------------------------------------------ only AI traffic is opened

    def service(self, host: str | None, port: int | None) -> ServiceSpec | None:
        if not host or self.policy is None:
            return None
        return self.policy.service_for_host(host, port)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        address = data.context.server.address
        tunnel = (str(address[0]), int(address[1])) if address else None
        if self.policy is None or not pipeline.intercepts(self.policy, tunnel, data.client_hello.sni or ""):
            data.ignore_connection = True  # not an AI service: pass the TLS stream through untouched

    @staticmethod
    def _request(flow: http.HTTPFlow) -> pipeline.Request:
        """The flow as the pipeline reads it: the request, plus the tunnel and SNI it came through."""
        request = flow.request
        address = flow.server_conn.address if request.scheme == "https" or flow.client_conn.tls else None
        tunnel = (str(address[0]), int(address[1])) if address else None
        headers = tuple(request.headers.items(multi=True))
        if request.trailers:  # HTTP/2 trailer fields are headers that come last: read like the others
            headers += tuple(request.trailers.items(multi=True))
        return pipeline.Request(
            method=request.method, path=request.path, headers=headers, body=request.raw_content or b"",
            host=request.host, port=request.port, tunnel=tunnel, sni=flow.client_conn.sni or "",
            authority=request.authority)

    # ------------------------------------------------------------ requests

    async def request(self, flow: http.HTTPFlow) -> None:
        events = await self._collecting(self._inspect_request(flow))
        if events:  # the reference staff quote in an appeal, on every inspected answer
            flow.metadata["guard_event_id"] = str(events[-1].record["event_id"])
        if not await self._keep(events):
            # The decision could not be recorded: nothing goes upstream, the user is told why.
            self._exchanges.pop(flow.id, None)
            notice = BlockNotice.failure(str(events[0].record["event_id"]), Reason.AUDIT_UNAVAILABLE)
            service = self.service(flow.request.pretty_host, flow.request.port)
            fmt = format_for(service.api if service else "generic")
            self._answer(flow, fmt, notice, self._reply(flow, fmt, notice, flow.request.raw_content or b""))

    @staticmethod
    async def _collecting(hook: typing.Awaitable[None]) -> list[PendingEvent]:
        """Run one hook's work and return the events it recorded (even when it raised)."""
        token = _hook_events.set([])
        try:
            await hook
        finally:
            events = _hook_events.get() or []
            _hook_events.reset(token)
        return events

    async def _keep(self, events: list[PendingEvent]) -> bool:
        """Commit events before the answer goes out; False when neither store nor journal took them."""
        if not events or self.writer is None:
            return True
        try:
            await self.writer.commit(events)
        except AuditUnavailable:
            return False
        return True

    async def _inspect_request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or self.policy is None:
            return
        request = self._request(flow)
        routed = pipeline.route(self.policy, request)
        service = routed.service
        if service is None:
            return
        started = time.perf_counter()
        fmt = format_for(service.api)
        event = self._event(flow, service, len(request.body))
        if routed.refusal or service.api == pipeline.UNSUPPORTED_API:
            reason = Reason.MISROUTED if routed.refusal else Reason.UNSUPPORTED_SERVICE
            notice = BlockNotice.failure(event.event_id, reason)
            self._answer(flow, fmt, notice, self._reply(flow, fmt, notice, b""))
            self._record(event, EventKind.BLOCKED, "block", started, action_taken="answered",
                         error=reason.value)
            return
        if flow.request.path == CONFIRM_PATH:
            if not self._release_confirmed(flow):
                return  # answered here: the form again, or the held request is gone
            request = self._request(flow)  # the held request, swapped in
            event = self._event(flow, service, len(request.body))
        try:
            if self.pool is None:
                raise RuntimeError("inspection workers are not running")
            content_type = request.header("content-type")
            body = pipeline.decoded_body(request, self.body_limit)
            user = event.user or event.client
            extracted = None
            if body and reads_documents(body, content_type):  # uploads are read in a worker, off the loop
                try:
                    extracted = await self.pool.extract(fmt, body, content_type, request.path, self.timeout,
                                                        user=user)
                except UnreadableContent as e:
                    extracted = pipeline.unreadable(fmt, service, body, e)
            seen = pipeline.inspection(fmt, service, request, self.body_limit, extracted)
            # Images are read (OCR) and their text inspected with the prompt's: inline ones wherever
            # they sit in a JSON body (also where a format does not report them), uploaded ones
            # (image files, scanned PDFs) where the upload's reader left them uninspected.
            if extracted is not None:  # a scanned PDF's pages are decoded here: off the event loop
                images = await asyncio.to_thread(image_parts.images_in_request, seen.body, content_type,
                                                 seen.parsed.uninspected)
            else:
                images = image_parts.images_in_request(seen.body, content_type, seen.parsed.uninspected)
            ocr = await asyncio.gather(*(self.pool.read_image(i.data, self.timeout, user=user)
                                         for i in images))
            first_image, text_parsed = len(seen.parsed.segments), seen.parsed
            if images:
                seen = replace(seen, parsed=image_parts.with_images(text_parsed, images, ocr,
                                                                    [None] * len(images), content_type))
            if seen.parsed.uninspected and service.unreadable_upload == "block":
                raise UnreadableContent(f"{len(seen.parsed.uninspected)} part(s) could not be read as text")
            if not seen.segments:  # only protocol words: forwarded as it came (but the reason header)
                flow.request.headers.pop(REASON_HEADER, None)
                self._record(event, EventKind.ALLOWED, "allow", started, action_taken="forwarded")
                return
            # The pool bounds the inspection (guard_timeout) and, separately, the wait for a worker.
            verdict = await self.pool.inspect(seen.texts, f"{flow.request.pretty_host}:{flow.request.port}",
                                              self.timeout, user=user)
            if images:
                replaces = functools.partial(self._replaces, tier=verdict.tier)
                if self.policy is not None and self.policy.images.personal_data == "block" and \
                        image_parts.replaced_in_images(verdict.findings, first_image, len(images), replaces):
                    verdict = replace(verdict, decision=Decision.BLOCK)
                if verdict.findings:  # the console's view of the images of an event worth reviewing
                    flow.metadata[THUMBNAILS] = await asyncio.to_thread(  # Pillow work, off the event loop
                        image_parts.thumbnails, images, ocr, verdict.findings, first_image)
                if verdict.decision is not Decision.BLOCK:  # a blocked request is never written back
                    masked = await asyncio.to_thread(
                        image_parts.masked_images, images, ocr, verdict.findings, first_image, replaces)
                    seen = replace(seen, parsed=image_parts.with_images(text_parsed, images, ocr, masked,
                                                                        content_type))
            self._apply(flow, fmt, request, seen, verdict, event, started)
        except Exception as e:  # every failure: fail closed unless the service says otherwise
            try:
                self._fail(flow, service, fmt, event, e, started)
            except Exception:
                # Even the failure reply could not be built: still send nothing upstream.
                flow.response = http.Response.make(403, "guard：檢查失敗，內容未送出。\n".encode(),
                                                   {"content-type": "text/plain; charset=utf-8"})
                raise

    def _event(self, flow: http.HTTPFlow, service: ServiceSpec, size: int) -> InspectionEvent:
        policy = self.policy
        return InspectionEvent(
            event_id=new_event_id(), kind=EventKind.ALLOWED, decision="allow",
            user=self._user(flow), client=flow.client_conn.peername[0] if flow.client_conn.peername else "",
            service=service.name, host=flow.request.pretty_host, path=pipeline.event_path(flow.request.path),
            method=flow.request.method, policy_name=policy.name if policy else "",
            policy_version=policy.version if policy else "", tier=service.tier, request_bytes=size,
        )

    def _apply(self, flow: http.HTTPFlow, fmt: RequestFormat, request: pipeline.Request,
               seen: pipeline.Inspection, verdict: Verdict, event: InspectionEvent, started: float) -> None:
        found = self._found(verdict)
        event = replace(event, entities=verdict.entity_counts(), segments=len(seen.segments),
                        policy_version=verdict.policy_version,
                        path=pipeline.event_path(request.path, seen, found),
                        snippets=tuple(snippets(seen.texts, found)))
        decision = verdict.decision
        warned = any(f.action == "warn" for f in found)
        confirmed = str(flow.metadata.get(CONFIRMED_REASON) or "")
        reason = pipeline.stated_reason(request, seen, found, confirmed) if warned else ""
        if decision is Decision.BLOCK:
            self._block(flow, fmt, seen, verdict, event, started, "answered")
            return
        if warned and not reason:
            notice = BlockNotice.from_entity_types(event.event_id, verdict.entity_counts(), Decision.WARN,
                                                   self._display_names())
            reply = self._confirm_form(flow, notice) if is_navigation(flow) else None
            self._answer(flow, fmt, notice, reply or self._reply(flow, fmt, notice, seen.body))
            self._record(event, EventKind.WARNED, "warn", started, action_taken="held for a reason",
                         thumbnails=flow.metadata.get(THUMBNAILS, ()))
            return
        redacting = decision is Decision.REDACT or bool(warned and verdict.placeholders)
        new_texts = list(verdict.redacted if redacting else seen.texts)
        if warned:  # the reason line is for the audit trail, not the service
            new_texts = pipeline.without_reason_lines(new_texts, len(seen.parsed.segments))
        try:
            out = pipeline.outgoing(fmt, request, seen, new_texts)
        except NotRewritable:  # a document (DOCX, PDF) cannot be redacted in place: block it instead
            self._block(flow, fmt, seen, verdict, event, started, "answered (not rewritable)")
            return
        self._send(flow, request, out)
        if getattr(fmt, "replies_elsewhere", False):  # its reply may hold an earlier prompt's placeholders
            flow.request.headers["accept-encoding"] = "identity"
        if redacting:
            # An uncompressed reply lets placeholders be restored chunk by chunk.
            flow.request.headers["accept-encoding"] = "identity"
            self._exchanges[flow.id] = _Exchange(dict(verdict.placeholders))
            if getattr(fmt, "replies_elsewhere", False):
                self.recent_placeholders.remember((event.user or event.client, event.service),
                                                  verdict.placeholders)
            self._record(event, EventKind.REDACTED, "redact", started, action_taken="rewritten",
                         reason=reason, evidence=seen.texts, thumbnails=flow.metadata.get(THUMBNAILS, ()))
            return
        kind = EventKind.WARNED if warned else EventKind.ALLOWED
        action = "rewritten" if out.body_changed else "forwarded"
        self._record(event, kind, decision.value, started, action_taken=action, reason=reason,
                     thumbnails=flow.metadata.get(THUMBNAILS, ()))

    @staticmethod
    def _send(flow: http.HTTPFlow, request: pipeline.Request, out: pipeline.Outgoing) -> None:
        """Put what the pipeline lets leave on the flow; untouched parts keep their original bytes."""
        if out.path != request.path:
            flow.request.path = out.path
        if out.headers != request.headers:
            fields = [(k, v) for k, v in out.headers]
            trailers = flow.request.trailers.items(multi=True) if flow.request.trailers else []
            n_trailers = sum(1 for k, _ in trailers if k.lower() != REASON_HEADER)
            flow.request.headers = http.Headers([
                (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
                for k, v in fields[:len(fields) - n_trailers or None]])
        # Trailer fields were read as headers; an inspected request leaves without them (HTTP/1 servers
        # behind the proxy may not accept them, and an AI API reads nothing there).
        flow.request.trailers = None
        if out.body_changed:
            flow.request.content = out.body

    def _display_names(self) -> Mapping[str, str]:
        """The policy's Traditional Chinese names for the entity types it adds (for notices)."""
        return self.policy.display_names if self.policy is not None else {}

    def _block(self, flow: http.HTTPFlow, fmt: RequestFormat, seen: pipeline.Inspection,
               verdict: Verdict, event: InspectionEvent, started: float, action_taken: str) -> None:
        notice = BlockNotice.from_entity_types(event.event_id, verdict.entity_counts(),
                                               display_names=self._display_names())
        self._answer(flow, fmt, notice, self._reply(flow, fmt, notice, seen.body))
        self._record(event, EventKind.BLOCKED, "block", started, action_taken=action_taken,
                     evidence=seen.texts, thumbnails=flow.metadata.get(THUMBNAILS, ()))

    # ------------------------------------------------------------ browser confirmation of a warned request

    @staticmethod
    def _origin(flow: http.HTTPFlow) -> Origin:
        peer = flow.client_conn.peername
        return (peer[0] if peer else "", flow.request.host, flow.request.port)

    def _confirm_form(self, flow: http.HTTPFlow, notice: BlockNotice) -> NativeResponse:
        """Hold the request as it arrived and answer with a form posting a reason back to CONFIRM_PATH."""
        request = flow.request
        token = self.held.hold(HeldRequest(self._origin(flow), request.method, request.path,
                                           tuple(request.headers.fields), request.raw_content or b"", notice))
        page = render_block_page(notice, CONFIRM_PATH, token)
        return NativeResponse(403, page.headers, page.body)

    def _release_confirmed(self, flow: http.HTTPFlow) -> bool:
        """A confirm post: swap in the held request (True), or answer it here and send nothing (False)."""
        form = flow.request.urlencoded_form
        token, reason = form.get("token", ""), " ".join(form.get("reason", "").split())[:200]
        held = self.held.peek(token, self._origin(flow))
        if held is None:
            page = render_confirm_expired_page()
        elif len(reason) < MIN_REASON_CHARS:
            page = render_block_page(held.notice, CONFIRM_PATH, token)
        else:
            self.held.take(token, self._origin(flow))
            flow.request.method, flow.request.path = held.method, held.path
            flow.request.headers = http.Headers(held.headers)
            flow.request.raw_content = held.body
            flow.metadata[CONFIRMED_REASON] = reason
            return True
        flow.response = http.Response.make(403, page.body, dict(page.headers))
        return False

    def _fail(self, flow: http.HTTPFlow, service: ServiceSpec, fmt: RequestFormat, event: InspectionEvent,
              error: Exception, started: float) -> None:
        reason = _failure_reason(error)
        if service.fail_mode == "open":
            self._record(event, EventKind.FAILED, "error", started, action_taken="forwarded (fail-open)",
                         error=reason.value)
            return
        notice = BlockNotice(event.event_id, (), 4, Decision.BLOCK, reason.value)
        self._answer(flow, fmt, notice, self._reply(flow, fmt, notice, flow.request.raw_content or b""))
        self._record(event, EventKind.FAILED, "error", started, action_taken="answered", error=reason.value)

    def _reply(self, flow: http.HTTPFlow, fmt: RequestFormat, notice: BlockNotice,
               body: bytes) -> NativeResponse:
        if is_navigation(flow):
            page = render_block_page(notice)
            return NativeResponse(403, page.headers, page.body)
        # Formats whose notice depends on the call it answers (Gemini's batchexecute RPC ids)
        answer_to = getattr(fmt, "block_response_to", None)
        if answer_to is not None:
            return answer_to(notice, wants_stream(flow, body), flow.request.path, body)  # type: ignore[no-any-return]
        return fmt.block_response(notice, streaming=wants_stream(flow, body))

    @staticmethod
    def _answer(flow: http.HTTPFlow, fmt: RequestFormat, notice: BlockNotice, reply: NativeResponse) -> None:
        flow.response = http.Response.make(reply.status, reply.body,
                                           {**dict(reply.headers), EVENT_HEADER: notice.event_id})
        flow.metadata["guard_event_id"] = notice.event_id

    def _record(self, event: InspectionEvent, kind: EventKind, decision: str, started: float,
                action_taken: str = "", reason: str = "", error: str = "",
                evidence: Sequence[str] | None = None, thumbnails: tuple[bytes, ...] = ()) -> None:
        """Log the event now; queue it (with the original texts as evidence, and the masked
        thumbnails of its images) for the audit store."""
        final = replace(event, kind=kind, decision=decision,
                        latency_ms=round((time.perf_counter() - started) * 1000, 2),
                        action_taken=action_taken, reason=reason, error=error)
        self.sink.record(final)
        self.metrics.observe(final)
        pending = _hook_events.get()
        if pending is not None:
            pending.append(PendingEvent(final.fields(), list(evidence) if evidence else None, thumbnails))

    def _replaces(self, finding: Finding, tier: str) -> bool:
        """The policy replaces this finding's value (redact, or block as a placeholder)."""
        return self.policy is not None and self.policy.rule_for(finding.entity_type, tier).action in (
            "redact", "block")

    def _found(self, verdict: Verdict) -> list[FoundAt]:
        policy = self.policy
        return [FoundAt(f.entity_type, f.segment, f.start, f.end, f.score,
                        policy.rule_for(f.entity_type, verdict.tier).action if policy else "")
                for f in verdict.findings]

    def _user(self, flow: http.HTTPFlow) -> str:
        auth = flow.metadata.get("proxyauth")
        if auth:
            return str(auth[0])
        peer = flow.client_conn.peername
        return user_for_address(self.users, peer[0]) if peer else ""

    # ------------------------------------------------------------ replies: restore placeholders

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        event_id = flow.metadata.get("guard_event_id")
        if event_id and flow.response is not None:
            flow.response.headers[EVENT_HEADER] = event_id
        if flow.response is None or flow.response.status_code == 101:
            return  # a WebSocket's messages are restored one by one
        exchange = self._follow_recent_placeholders(flow)
        if exchange is None:
            return
        headers = flow.response.headers
        # A reply that streams (no length announced, not compressed) is restored as it streams.
        if "content-length" not in headers and headers.get("content-encoding", "identity") == "identity":
            restorer = stream_restorer(headers.get("content-type", ""), exchange.placeholders)
            exchange.restorer = restorer

            def restore_chunk(chunk: bytes) -> list[bytes]:
                out = restorer.feed(chunk) if chunk else restorer.flush()
                return [out] if out else []  # an empty chunk would end a chunked body early

            flow.response.stream = restore_chunk

    def response(self, flow: http.HTTPFlow) -> None:
        exchange = self._exchanges.pop(flow.id, None)
        if exchange is None or flow.response is None or exchange.restorer is not None:
            return
        content = flow.response.get_content(strict=False) or b""
        if not may_hold_placeholders(content, exchange.placeholders):
            return  # most replies: no placeholder in any spelling, nothing to parse
        restored = restore_body(content, flow.response.headers.get("content-type", ""), exchange.placeholders)
        if restored != content:
            flow.response.content = restored

    def error(self, flow: http.HTTPFlow) -> None:
        self._exchanges.pop(flow.id, None)

    # ------------------------------------------------------------ WebSocket chat (Copilot and others)

    async def websocket_message(self, flow: http.HTTPFlow) -> None:
        events = await self._collecting(self._inspect_ws_message(flow))
        if not await self._keep(events) and flow.websocket is not None:
            flow.websocket.messages[-1].drop()
            service = self.service(flow.request.pretty_host, flow.request.port)
            if service is not None:
                notice = BlockNotice.failure(str(events[0].record["event_id"]), Reason.AUDIT_UNAVAILABLE)
                self._inject_notice(flow, service, notice, flow.websocket.messages[-1].content)

    async def _inspect_ws_message(self, flow: http.HTTPFlow) -> None:
        service = self.service(flow.request.pretty_host, flow.request.port)
        if service is None or flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        if not message.from_client:
            self._follow_recent_placeholders(flow)
            self._restore_ws(flow, message)
            return
        started = time.perf_counter()
        event = self._event(flow, service, len(message.content))
        try:
            if self.pool is None:
                raise RuntimeError("inspection workers are not running")
            if websocket.may_hold_files(message.content):  # files are read in a worker, off the loop
                parsed = await self.pool.extract(websocket.MessageReader(service.api, message.is_text),
                                                 message.content, "", "", self.timeout,
                                                 user=event.user or event.client)
            else:
                parsed = websocket.extract_ws_message(service.api, message.content, message.is_text)
            if parsed.uninspected and service.unreadable_upload == "block":
                raise UnreadableContent("a WebSocket message could not be read as text")
            texts = tuple(s.text for s in parsed.all_segments)  # every string and key, not only the prompt
            if not texts:
                return
            verdict = await self.pool.inspect(texts, f"{flow.request.pretty_host}:{flow.request.port}",
                                              self.timeout, user=event.user or event.client)
        except Exception as e:
            message.drop()
            reason = _failure_reason(e)
            notice = BlockNotice(event.event_id, (), 4, Decision.BLOCK, reason.value)
            self._inject_notice(flow, service, notice, message.content)
            self._record(event, EventKind.FAILED, "error", started,
                         action_taken="dropped", error=reason.value)
            return
        event = replace(event, entities=verdict.entity_counts(), segments=len(texts),
                        policy_version=verdict.policy_version)
        rewritten = message.content
        if verdict.decision is Decision.REDACT:
            try:
                rewritten = websocket.rewrite_ws_message(parsed, verdict.redacted)
            except NotRewritable:  # a file inside the message cannot be redacted in place: block it instead
                verdict = replace(verdict, decision=Decision.BLOCK)
        if verdict.decision in (Decision.BLOCK, Decision.WARN):
            # A WebSocket has no header for a stated reason: a warned message is held like a blocked one.
            message.drop()
            self._inject_notice(flow, service, BlockNotice.from_entity_types(
                event.event_id, verdict.entity_counts(), verdict.decision, self._display_names()),
                message.content)
            kind = EventKind.BLOCKED if verdict.decision is Decision.BLOCK else EventKind.WARNED
            self._record(event, kind, verdict.decision.value, started, action_taken="dropped")
            return
        if verdict.decision is Decision.REDACT:
            message.content = rewritten
            # One map for the connection: later replies may refer to earlier messages' placeholders.
            exchange = self._exchanges.setdefault(flow.id, _Exchange({}))
            exchange.placeholders = {**exchange.placeholders, **verdict.placeholders}
            exchange.ws_restorer = WsMessageRestorer(exchange.placeholders)
            self._record(event, EventKind.REDACTED, "redact", started, action_taken="rewritten")
            return
        self._record(event, EventKind.ALLOWED, "allow", started, action_taken="forwarded")

    def _follow_recent_placeholders(self, flow: http.HTTPFlow) -> _Exchange | None:
        """For a service whose answers come back on other requests or connections (Le Chat's ``start``,
        Poe's channel): restore with the user's recent redacted prompts to it, as they change."""
        service = self.service(flow.request.pretty_host, flow.request.port)
        if service is None or not getattr(format_for(service.api), "replies_elsewhere", False):
            return self._exchanges.get(flow.id)
        peer = flow.client_conn.peername
        recent = self.recent_placeholders.get((self._user(flow) or (peer[0] if peer else ""), service.name))
        exchange = self._exchanges.get(flow.id)
        if recent is None:
            return exchange
        version, placeholders = recent
        if exchange is None:
            exchange = self._exchanges[flow.id] = _Exchange({})
        if exchange.recent_version != version:
            exchange.recent_version = version
            exchange.placeholders = {**exchange.placeholders, **placeholders}  # the latest prompt's win
            if flow.websocket is not None:
                exchange.ws_restorer = WsMessageRestorer(exchange.placeholders)
        return exchange

    def _restore_ws(self, flow: http.HTTPFlow, message: object) -> None:
        exchange = self._exchanges.get(flow.id)
        if exchange is None or exchange.ws_restorer is None:
            return
        restored = websocket.restore_ws_message(exchange.ws_restorer, message.content,  # type: ignore[attr-defined]
                                                message.is_text)  # type: ignore[attr-defined]
        if restored is None:
            return
        if not restored:
            message.drop()  # type: ignore[attr-defined]
            return
        message.content = restored[0]  # type: ignore[attr-defined]
        for extra in restored[1:]:
            ctx.master.commands.call("inject.websocket", flow, True, extra, message.is_text)  # type: ignore[attr-defined]

    def _inject_notice(self, flow: http.HTTPFlow, service: ServiceSpec, notice: BlockNotice,
                       client_message: bytes = b"") -> None:
        for text in websocket.block_ws_messages(service.api, notice, client_message):
            ctx.master.commands.call("inject.websocket", flow, True, text.encode(), True)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._exchanges.pop(flow.id, None)


def _seconds(option: str, value: str, minimum: float) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise exceptions.OptionsError(f"{option}: {value!r} is not a number of seconds") from None
    if not seconds >= minimum or seconds > 86400:
        raise exceptions.OptionsError(f"{option} must be between {minimum:g} and 86400 seconds")
    return seconds


def _fingerprint(policy_path: str) -> bytes:
    """What the policy file holds now (a missing file has its own fingerprint: it may come back)."""
    if not policy_path:
        return b""
    try:
        return hashlib.sha256(Path(policy_path).read_bytes()).digest()
    except OSError:
        return b"unreadable"


class Drain:
    """Graceful shutdown: count the HTTP exchanges in flight, so ``guard proxy`` can let them finish.

    On SIGTERM ``guard proxy`` marks itself not ready, stops listening (a balancer's new connections
    are refused and retried on another node at once), waits here until no exchange is in flight or
    ``guard_drain_seconds`` have passed, and then exits; the audit writer commits what it holds on
    the way out. Replies sent while draining carry ``Connection: close`` (HTTP/1), so keep-alive
    clients reconnect elsewhere instead of sending their next prompt to a closing node.
    """

    FLUSH_SECONDS = 0.2  # the last reply leaves its socket just after its response hook returns

    def __init__(self) -> None:
        self._open: set[str] = set()
        self.draining = False

    def load(self, loader: object) -> None:
        # int, not float: mitmproxy's --set cannot parse float options.
        loader.add_option("guard_drain_seconds", int, 10,  # type: ignore[attr-defined]
                          "On SIGTERM, seconds to let requests in flight finish before exiting.")

    def configure(self, updated: set[str]) -> None:
        if "guard_drain_seconds" in updated and ctx.options.guard_drain_seconds < 0:
            raise exceptions.OptionsError("guard_drain_seconds must be 0 or more")

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._open.add(flow.id)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if self.draining and flow.response is not None and flow.request.http_version.startswith("HTTP/1"):
            flow.response.headers["connection"] = "close"

    def response(self, flow: http.HTTPFlow) -> None:
        self._open.discard(flow.id)

    def error(self, flow: http.HTTPFlow) -> None:
        self._open.discard(flow.id)

    async def wait(self) -> int:
        """Wait until nothing is in flight or the drain time is up; return how many were cut short."""
        self.draining = True
        seconds = ctx.options.guard_drain_seconds
        ctx.log.info(f"guard: draining: {self.in_flight} request(s) in flight, waiting up to {seconds} s")
        deadline = time.monotonic() + seconds
        while self._open and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(self.FLUSH_SECONDS)
        if self._open:
            ctx.log.warn(f"guard: drain time up: {self.in_flight} request(s) cut short")
        else:
            ctx.log.info("guard: drained: no request in flight")
        return self.in_flight


def _failure_reason(error: Exception) -> Reason:
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return Reason.INSPECTION_TIMEOUT
    if isinstance(error, BodyTooLarge):
        return Reason.BODY_TOO_LARGE
    if isinstance(error, UnreadableContent):
        return Reason.UNREADABLE_CONTENT
    if isinstance(error, AmbiguousRequest):
        return Reason.AMBIGUOUS_REQUEST
    if isinstance(error, GuardFormatError):
        return Reason.UNDECODABLE_BODY
    return Reason.INSPECTION_FAILED


addons = [Guard()]
