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
import ipaddress
import json
import re
import time
from collections.abc import Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

from mitmproxy import ctx, exceptions, http, tls

from guard.audit import AuditSink, EventKind, InspectionEvent, LogSink, new_event_id
from guard.formats import copilot, format_for, generic
from guard.formats.base import (
    BodyTooLarge,
    GuardFormatError,
    NativeResponse,
    ParsedRequest,
    RequestFormat,
    UnreadableContent,
)
from guard.formats.compression import decode_body
from guard.formats.restore import SseRestorer, WsMessageRestorer, restore_json_body, restore_text
from guard.notice import BlockNotice, Reason, render_block_page, short_message
from guard.policy import Policy, PolicyError, ServiceSpec, load_policy
from guard.verdict import Decision, Verdict
from guard.workers import InspectionPool

REASON_HEADER = "x-guard-reason"
# A stated reason typed into the prompt itself: 「查詢事由：…」 on a line of its own.
REASON_IN_TEXT = re.compile(r"^[ \t]*(?:查詢事由|事由)[:：][ \t]*(\S.{3,200}?)[ \t]*$", re.MULTILINE)
MIN_REASON_CHARS = 4


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
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    for network, user in users:
        if ip.version == network.version and ip in network:
            return user
    return ""


def stated_reason(flow: http.HTTPFlow, texts: tuple[str, ...]) -> str:
    """The user's 查詢事由, from the X-Guard-Reason header or a 「查詢事由：…」 line in the prompt."""
    header = unquote(flow.request.headers.get(REASON_HEADER, "")).strip()
    if len(header) >= MIN_REASON_CHARS:
        return header[:200]
    for text in texts:
        match = REASON_IN_TEXT.search(text)
        if match:
            return match.group(1).strip()
    return ""


def wants_stream(flow: http.HTTPFlow, body: bytes) -> bool:
    """Does the client expect an event stream (so a block reply must be one too)?"""
    if "text/event-stream" in flow.request.headers.get("accept", ""):
        return True
    if "streamGenerateContent" in flow.request.path:
        return True
    try:
        data = json.loads(body) if body[:1] in (b"{", b"[") else None
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("stream") is True


def is_navigation(flow: http.HTTPFlow) -> bool:
    """A page load (form post) in a browser: answer with an HTML page, not an API error."""
    return flow.request.headers.get("sec-fetch-mode") == "navigate" or (
        flow.request.headers.get("accept", "").startswith("text/html")
    )


# ---------------------------------------------------------------- the addon

class _Exchange:
    """What one AI request needs until its reply is done: memory only, never saved."""

    __slots__ = ("placeholders", "restorer", "ws_restorer")

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self.placeholders = placeholders
        self.restorer: SseRestorer | None = None
        self.ws_restorer: WsMessageRestorer | None = None


class Guard:
    def __init__(self, sink: AuditSink | None = None) -> None:
        self.policy: Policy | None = None
        self.pool: InspectionPool | None = None
        self.sink: AuditSink = sink or LogSink()
        self.body_limit = 16 * 1024**2
        self.users: UserNetworks = ()
        self._exchanges: dict[str, _Exchange] = {}
        self._running = False

    # ------------------------------------------------------------ options

    def load(self, loader: object) -> None:
        add = loader.add_option  # type: ignore[attr-defined]
        add("guard_policy", str, "", "Policy YAML file; empty means the bundled default policy.")
        add("guard_workers", int, 2,
            "Inspection worker processes (0: inspect in a thread of the proxy process).")
        add("guard_body_limit", str, "16m",
            "Largest request body inspected (after decompression); larger bodies are refused.")
        add("guard_timeout", float, 10.0,
            "Seconds one request's inspection may take before it fails closed.")
        add("guard_user_map", str, "",
            "File of 'ADDRESS-or-CIDR USER' lines naming the user behind a client.")
        add("guard_audit_db", str, "", "Audit store URL: sqlite:///PATH or postgresql://...")

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
        if "guard_timeout" in updated and ctx.options.guard_timeout <= 0:
            raise exceptions.OptionsError("guard_timeout must be more than 0 seconds")
        if updated & {"guard_policy", "guard_workers"}:
            policy = self._load(ctx.options.guard_policy or None, ctx.options.guard_workers)
            if self._running:  # a change while serving: swap in a new pool
                self._start(policy)
            else:
                self.policy = policy  # the pool starts once, in running()

    def running(self) -> None:
        self._running = True
        if self.policy is not None and self.pool is None:
            self._start(self.policy)

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
        pool = InspectionPool(policy_path, workers)
        try:
            pool.wait_ready()
        except Exception as e:
            pool.close()
            raise exceptions.OptionsError(f"inspection workers could not start: {e}") from e
        old, self.pool, self.policy = self.pool, pool, policy
        if old is not None:
            old.close()
        ctx.log.info(f"guard: policy {policy.name} {policy.version}, {len(policy.services)} AI services, "
                     f"{workers} inspection workers")

    def done(self) -> None:
        if self.pool is not None:
            self.pool.close()

    # ------------------------------------------------------------ only AI traffic is opened

    def service(self, host: str | None, port: int | None) -> ServiceSpec | None:
        if not host or self.policy is None:
            return None
        return self.policy.service_for_host(host, port)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        address = data.context.server.address
        host = data.client_hello.sni or (address[0] if address else None)
        if self.service(host, address[1] if address else None) is None:
            data.ignore_connection = True  # not an AI service: pass the TLS stream through untouched

    # ------------------------------------------------------------ requests

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        service = self.service(flow.request.pretty_host, flow.request.port)
        if service is None or not flow.request.raw_content:
            return
        started = time.perf_counter()
        event = self._event(flow, service, len(flow.request.raw_content))
        fmt = format_for(service.api)
        try:
            if self.pool is None:
                raise RuntimeError("inspection workers are not running")
            body = decode_body(flow.request.raw_content, flow.request.headers.get("content-encoding", ""),
                               self.body_limit)
            if len(body) > self.body_limit:
                raise BodyTooLarge("request body is larger than guard_body_limit")
            parsed = fmt.extract(body, flow.request.headers.get("content-type", ""), flow.request.path)
            if parsed.uninspected and service.unreadable_upload == "block":
                raise UnreadableContent(f"{len(parsed.uninspected)} part(s) could not be read as text")
            if not parsed.segments:
                return  # nothing user-visible to inspect (telemetry, polling)
            verdict = await asyncio.wait_for(
                self.pool.inspect(parsed.texts, f"{flow.request.pretty_host}:{flow.request.port}"),
                timeout=ctx.options.guard_timeout,
            )
            self._apply(flow, fmt, parsed, body, verdict, event, started)
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
            service=service.name, host=flow.request.pretty_host, path=flow.request.path.split("?", 1)[0],
            method=flow.request.method, policy_name=policy.name if policy else "",
            policy_version=policy.version if policy else "", tier=service.tier, request_bytes=size,
        )

    def _apply(self, flow: http.HTTPFlow, fmt: RequestFormat, parsed: ParsedRequest,
               body: bytes, verdict: Verdict, event: InspectionEvent, started: float) -> None:
        event = replace(event, entities=verdict.entity_counts(), segments=len(parsed.segments),
                        policy_version=verdict.policy_version)
        decision = verdict.decision
        warned = any(self.policy.rule_for(f.entity_type, verdict.tier).action == "warn"  # type: ignore[union-attr]
                     for f in verdict.findings)
        reason = stated_reason(flow, parsed.texts) if warned else ""
        if decision is Decision.BLOCK:
            notice = BlockNotice.from_entity_types(event.event_id, verdict.entity_counts())
            self._answer(flow, fmt, notice, self._reply(flow, fmt, notice, body))
            self._record(event, EventKind.BLOCKED, "block", started, action_taken="answered")
            return
        if warned and not reason:
            notice = BlockNotice.from_entity_types(event.event_id, verdict.entity_counts(), Decision.WARN)
            self._answer(flow, fmt, notice, self._reply(flow, fmt, notice, body))
            self._record(event, EventKind.WARNED, "warn", started, action_taken="held for a reason")
            return
        if decision is Decision.REDACT or (warned and verdict.placeholders):
            flow.request.content = fmt.rewrite(parsed, verdict.redacted)
            # An uncompressed reply lets placeholders be restored chunk by chunk.
            flow.request.headers["accept-encoding"] = "identity"
            self._exchanges[flow.id] = _Exchange(dict(verdict.placeholders))
            self._record(event, EventKind.REDACTED, "redact", started,
                         action_taken="rewritten", reason=reason)
            return
        kind = EventKind.WARNED if warned else EventKind.ALLOWED
        self._record(event, kind, decision.value, started, action_taken="forwarded", reason=reason)

    def _fail(self, flow: http.HTTPFlow, service: ServiceSpec, fmt: RequestFormat, event: InspectionEvent,
              error: Exception, started: float) -> None:
        if isinstance(error, BrokenProcessPool) and self.policy is not None:
            # A worker died (killed, out of memory): this request fails closed, the next gets a new pool.
            self._start(self.policy)
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
        return fmt.block_response(notice, streaming=wants_stream(flow, body))

    @staticmethod
    def _answer(flow: http.HTTPFlow, fmt: RequestFormat, notice: BlockNotice, reply: NativeResponse) -> None:
        flow.response = http.Response.make(reply.status, reply.body, dict(reply.headers))
        flow.metadata["guard_event_id"] = notice.event_id

    def _record(self, event: InspectionEvent, kind: EventKind, decision: str, started: float,
                action_taken: str = "", reason: str = "", error: str = "") -> None:
        final = replace(event, kind=kind, decision=decision,
                        latency_ms=round((time.perf_counter() - started) * 1000, 2),
                        action_taken=action_taken, reason=reason, error=error)
        self.sink.record(final)

    def _user(self, flow: http.HTTPFlow) -> str:
        auth = flow.metadata.get("proxyauth")
        if auth:
            return str(auth[0])
        peer = flow.client_conn.peername
        return user_for_address(self.users, peer[0]) if peer else ""

    # ------------------------------------------------------------ replies: restore placeholders

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        exchange = self._exchanges.get(flow.id)
        if exchange is None or flow.response is None:
            return
        if "text/event-stream" in flow.response.headers.get("content-type", ""):
            exchange.restorer = SseRestorer(exchange.placeholders)
            restorer = exchange.restorer

            def restore_chunk(chunk: bytes) -> bytes:
                return restorer.feed(chunk) if chunk else restorer.flush()

            flow.response.stream = restore_chunk

    def response(self, flow: http.HTTPFlow) -> None:
        exchange = self._exchanges.pop(flow.id, None)
        if exchange is None or flow.response is None or exchange.restorer is not None:
            return
        content = flow.response.get_content(strict=False) or b""
        if "json" in flow.response.headers.get("content-type", ""):
            restored = restore_json_body(content, exchange.placeholders)
        else:
            restored = restore_text(content.decode("utf-8", "replace"), exchange.placeholders).encode()
        if restored != content:
            flow.response.content = restored

    def error(self, flow: http.HTTPFlow) -> None:
        self._exchanges.pop(flow.id, None)

    # ------------------------------------------------------------ WebSocket chat (Copilot and others)

    async def websocket_message(self, flow: http.HTTPFlow) -> None:
        service = self.service(flow.request.pretty_host, flow.request.port)
        if service is None or flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        if not message.is_text:
            return
        if not message.from_client:
            self._restore_ws(flow, message)
            return
        ws = copilot if service.api == "copilot" else generic
        started = time.perf_counter()
        event = self._event(flow, service, len(message.content))
        try:
            if self.pool is None:
                raise RuntimeError("inspection workers are not running")
            parsed = ws.extract_ws_message(message.text)
            if not parsed.segments:
                return
            verdict = await asyncio.wait_for(
                self.pool.inspect(parsed.texts, f"{flow.request.pretty_host}:{flow.request.port}"),
                timeout=ctx.options.guard_timeout)
        except Exception as e:
            message.drop()
            reason = _failure_reason(e)
            notice = BlockNotice(event.event_id, (), 4, Decision.BLOCK, reason.value)
            self._inject_notice(flow, service, notice)
            self._record(event, EventKind.FAILED, "error", started,
                         action_taken="dropped", error=reason.value)
            return
        event = replace(event, entities=verdict.entity_counts(), segments=len(parsed.segments),
                        policy_version=verdict.policy_version)
        if verdict.decision in (Decision.BLOCK, Decision.WARN):
            # A WebSocket has no header for a stated reason: a warned message is held like a blocked one.
            message.drop()
            self._inject_notice(flow, service, BlockNotice.from_entity_types(
                event.event_id, verdict.entity_counts(), verdict.decision))
            kind = EventKind.BLOCKED if verdict.decision is Decision.BLOCK else EventKind.WARNED
            self._record(event, kind, verdict.decision.value, started, action_taken="dropped")
            return
        if verdict.decision is Decision.REDACT:
            message.text = ws.rewrite_ws_message(parsed, verdict.redacted)
            # One map for the connection: later replies may refer to earlier messages' placeholders.
            exchange = self._exchanges.setdefault(flow.id, _Exchange({}))
            exchange.placeholders = {**exchange.placeholders, **verdict.placeholders}
            exchange.ws_restorer = WsMessageRestorer(exchange.placeholders)
            self._record(event, EventKind.REDACTED, "redact", started, action_taken="rewritten")
            return
        self._record(event, EventKind.ALLOWED, "allow", started, action_taken="forwarded")

    def _restore_ws(self, flow: http.HTTPFlow, message: object) -> None:
        exchange = self._exchanges.get(flow.id)
        if exchange is None or exchange.ws_restorer is None:
            return
        restored = exchange.ws_restorer.feed(message.text)  # type: ignore[attr-defined]
        if not restored:
            message.drop()  # type: ignore[attr-defined]
            return
        message.text = restored[0]  # type: ignore[attr-defined]
        for extra in restored[1:]:
            ctx.master.commands.call("inject.websocket", flow, True, extra.encode(), True)

    def _inject_notice(self, flow: http.HTTPFlow, service: ServiceSpec, notice: BlockNotice) -> None:
        messages = copilot.block_ws_messages(notice) if service.api == "copilot" else [short_message(notice)]
        for text in messages:
            ctx.master.commands.call("inject.websocket", flow, True, text.encode(), True)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._exchanges.pop(flow.id, None)


def _failure_reason(error: Exception) -> Reason:
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return Reason.INSPECTION_TIMEOUT
    if isinstance(error, BodyTooLarge):
        return Reason.BODY_TOO_LARGE
    if isinstance(error, UnreadableContent):
        return Reason.UNREADABLE_CONTENT
    if isinstance(error, GuardFormatError):
        return Reason.UNDECODABLE_BODY
    return Reason.INSPECTION_FAILED


addons = [Guard()]
