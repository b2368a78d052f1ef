"""Local HTTPS + WebSocket stand-ins for the consumer web apps, each answering in its real reply framing.

One server per app (the catalogue maps ``127.0.0.1:PORT`` to the app's format). Every answer echoes
the prompt the server received (``你說：`` + prompt), in the app's framing cut in small pieces
(``tests/webapps.py``), so restored values and split placeholders are checked on the client side.
WebSocket (RFC 6455) is spoken by hand, stdlib only: fragmented and binary messages included.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs

from tests import webapps
from tests.e2e.upstream import ECHO_PREFIX, TlsServer, send_chunked

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


# ------------------------------------------------------------------ WebSocket frames

def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = False) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack(">H", size)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_ws_frame(stream: BinaryIO) -> tuple[bool, int, bytes]:
    b1, b2 = stream.read(2)
    size = b2 & 0x7F
    if size == 126:
        size = struct.unpack(">H", stream.read(2))[0]
    elif size == 127:
        size = struct.unpack(">Q", stream.read(8))[0]
    key = stream.read(4) if b2 & 0x80 else b""
    payload = stream.read(size)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bool(b1 & 0x80), b1 & 0x0F, payload


def read_ws_message(stream: BinaryIO) -> tuple[int, bytes]:
    """One whole message (fragments joined); control frames other than close are skipped."""
    opcode, parts = None, []
    while True:
        fin, op, payload = read_ws_frame(stream)
        if op == CLOSE:
            return CLOSE, payload
        if op in (PING, PONG):
            continue
        if op != CONTINUATION:
            opcode = op
        parts.append(payload)
        if fin:
            return opcode or TEXT, b"".join(parts)


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


# ------------------------------------------------------------------ the apps

@dataclass(frozen=True)
class Received:
    """One request body or client WebSocket message as it reached the stand-in (decoded for search)."""

    path: str
    raw: bytes
    text: str


def _unwrapped(value: Any) -> list[str]:
    """A JSON value's strings, with JSON held in strings opened too."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _unwrapped(v)]
    if isinstance(value, list):
        return [s for v in value for s in _unwrapped(v)]
    if isinstance(value, str):
        try:
            inner = json.loads(value)
        except ValueError:
            return [value]
        return [value, *_unwrapped(inner)] if isinstance(inner, dict | list) else [value]
    return []


def _decoded(raw: bytes) -> str:
    """Every string of a body or message, with JSON, SignalR records and forms decoded: \\u-escaped
    or percent-encoded values are found too."""
    text = raw.decode("utf-8", "replace")
    out = [text]
    pieces = text.split(webapps.RS) + [v for vs in parse_qs(text).values() for v in vs]
    for piece in pieces:
        try:
            out += _unwrapped(json.loads(piece))
        except ValueError:
            out.append(piece)
    return "\n".join(out)


def _gemini_prompt(form: dict[str, list[str]]) -> str:
    inner = json.loads(json.loads(form["f.req"][0])[1])
    return str(inner[0][0])


def _parts_text(content: Any) -> str:
    """A string, or the text of ``[{"type": "text", "text": ...}]`` parts (Le Chat)."""
    return content if isinstance(content, str) else "".join(p["text"] for p in content if p["type"] == "text")


def http_answer(server: WebAppServer, path: str, content_type: str, body: bytes) -> tuple[str, list[bytes]]:
    """(content type, body chunks) of an app's answer to one request."""
    app = server.app
    form = parse_qs(body.decode("utf-8", "replace")) if "form-urlencoded" in content_type else {}
    doc: Any = None
    if "json" in content_type or body[:1] in (b"{", b"["):
        with contextlib.suppress(ValueError):  # records (SignalR, JSON lines) are no one document
            doc = json.loads(body)
    if app == "chatgpt":
        if form:  # the guest page's form: an HTML page answers
            return "text/html; charset=utf-8", [webapps.html_reply(ECHO_PREFIX + form["q"][0])]
        prompt = "".join(p for p in doc["messages"][-1]["content"]["parts"] if isinstance(p, str))
        return "text/event-stream; charset=utf-8", webapps.chatgpt_reply(ECHO_PREFIX + prompt)
    if app == "claude":
        return "text/event-stream; charset=utf-8", webapps.claude_reply(ECHO_PREFIX + doc["prompt"])
    if app == "gemini" and "/batchexecute" in path:  # each RPC answered with its own payload echoed
        (rpc_id, payload, *_), = json.loads(form["f.req"][0])[0]
        return "application/json; charset=utf-8", [webapps.batchexecute_reply(rpc_id, json.loads(payload))]
    if app == "gemini":
        return "application/json; charset=utf-8", webapps.gemini_web_reply(ECHO_PREFIX + _gemini_prompt(form))
    if app == "perplexity":
        return "text/event-stream; charset=utf-8", webapps.perplexity_reply(ECHO_PREFIX + doc["query_str"])
    if app == "deepseek":
        return "text/event-stream; charset=utf-8", webapps.deepseek_reply(ECHO_PREFIX + doc["prompt"])
    if app == "grok":
        return "application/json", webapps.grok_reply(ECHO_PREFIX + doc["message"])
    if app == "meta":
        prompt = json.loads(form["variables"][0])["message"]["sensitive_string_value"]
        return "application/json", webapps.meta_ai_reply(ECHO_PREFIX + prompt)
    if app == "lechat" and path.startswith("/api/trpc/message.newChat"):
        chat_id = f"chat-{len(server.chats)}"  # the prompt is kept: the next /api/chat "start" answers it
        server.chats[chat_id] = _parts_text(doc["0"]["json"]["content"])
        created = [{"result": {"data": {"json": {"chatId": chat_id}}}}]
        return "application/json", [json.dumps(created).encode()]
    if app == "lechat":
        start = doc["mode"] == "start"
        prompt = server.chats[doc["chatId"]] if start else _parts_text(doc["messageInput"])
        return "text/event-stream; charset=utf-8", webapps.le_chat_reply(ECHO_PREFIX + prompt, prompt)
    if app == "poe":  # the acknowledgement here, the answer on the channel's WebSocket
        prompt = doc["variables"]["query"]
        (server.relay or server).push(webapps.poe_updates(ECHO_PREFIX + prompt))
        return "application/json", [webapps.poe_ack(prompt)]
    return "application/json", [json.dumps({"ok": True}).encode()]


def ws_answer(app: str, message: bytes) -> list[str]:
    """The server messages answering one client message."""
    text = message.decode("utf-8")
    if app == "copilot":
        doc = json.loads(text)
        if doc.get("event") != "send":
            return []
        prompt = "".join(p.get("text", "") for p in doc["content"])
        return webapps.copilot_reply(ECHO_PREFIX + prompt)
    out: list[str] = []
    for record in text.split(webapps.RS)[:-1]:
        doc = json.loads(record)
        if doc.get("protocol") == "json":
            out.append(webapps.signalr({}))  # handshake accepted
        elif doc.get("type") == 4 and doc.get("target") == "chat":
            prompt = doc["arguments"][0]["message"]["text"]
            out += webapps.bing_reply(ECHO_PREFIX + prompt, doc["invocationId"])
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: WebAppServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.record(Received(self.path, body, _decoded(body)))
        content_type = self.headers.get("content-type", "")
        send_chunked(self, *http_answer(self.server, self.path, content_type, body))

    def do_GET(self) -> None:
        if self.headers.get("upgrade", "").lower() != "websocket":
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.send_response(101)
        self.send_header("upgrade", "websocket")
        self.send_header("connection", "Upgrade")
        self.send_header("sec-websocket-accept", ws_accept(self.headers["sec-websocket-key"]))
        self.end_headers()
        self.wfile.flush()
        self.write_lock = threading.Lock()
        self.server.channels.append(self)
        try:
            while True:
                opcode, payload = read_ws_message(self.rfile)
                if opcode == CLOSE:
                    self.send_ws(ws_frame(CLOSE, payload[:2]))
                    self.close_connection = True
                    return
                self.server.record(Received(self.path, payload, _decoded(payload)))
                for answer in ws_answer(self.server.app, payload):
                    self.send_ws(ws_frame(TEXT, answer.encode()))
        finally:
            self.server.channels.remove(self)

    def send_ws(self, frame: bytes) -> None:
        with self.write_lock:  # answers and pushed updates come from different threads
            self.wfile.write(frame)
            self.wfile.flush()


class WebAppServer(TlsServer):
    """One app's stand-in on 127.0.0.1 over TLS; records what it receives."""

    def __init__(self, app: str, cert: Path, key: Path) -> None:
        super().__init__(_Handler, cert, key, name=f"webapp-{app}")
        self.app = app
        self.requests: list[Received] = []
        self.chats: dict[str, str] = {}  # Le Chat: chat id -> its first prompt
        self.channels: list[_Handler] = []  # open WebSockets (Poe's tchannel)
        self.relay: WebAppServer | None = None  # Poe: where the answers to this host's requests go

    def record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def push(self, messages: list[str]) -> None:
        """Send server messages on every open WebSocket (Poe's channel)."""
        for channel in list(self.channels):
            for message in messages:
                channel.send_ws(ws_frame(TEXT, message.encode()))

    def received(self, marker: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if marker in r.text]


# ------------------------------------------------------------------ clients through the proxy

def tunnel(proxy_port: int, target: WebAppServer, ca: Path) -> ssl.SSLSocket:
    """A TLS connection to ``target`` through the proxy's CONNECT, trusting only the proxy's CA."""
    raw = socket.create_connection(("127.0.0.1", proxy_port), timeout=30)
    raw.sendall(f"CONNECT {target.host_port} HTTP/1.1\r\nHost: {target.host_port}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(4096)
    assert answer.split(b" ")[1] == b"200", answer
    context = ssl.create_default_context(cafile=str(ca))
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


class WsClient:
    """A WebSocket client through the proxy (masked frames, fragments and binary on request)."""

    def __init__(self, proxy_port: int, target: WebAppServer, ca: Path, path: str) -> None:
        self.sock = tunnel(proxy_port, target, ca)
        self.stream = self.sock.makefile("rb")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {target.host_port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\nOrigin: https://copilot.microsoft.com\r\n\r\n").encode())
        status = self.stream.readline()
        assert b" 101 " in status, status
        while self.stream.readline() not in (b"\r\n", b""):
            pass

    def send(self, message: str | bytes, *, binary: bool = False, fragments: int = 1) -> None:
        data = message.encode() if isinstance(message, str) else message
        size = -(-len(data) // fragments)
        parts = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        for i, part in enumerate(parts):
            opcode = (BINARY if binary else TEXT) if i == 0 else CONTINUATION
            self.sock.sendall(ws_frame(opcode, part, fin=i == len(parts) - 1, mask=True))

    def receive_until(self, done: Callable[[list[str]], bool], timeout: float = 20) -> list[str]:
        self.sock.settimeout(timeout)
        out: list[str] = []
        while not done(out):
            _, payload = read_ws_message(self.stream)
            out.append(payload.decode("utf-8"))
        return out

    def close(self) -> None:
        try:
            self.sock.sendall(ws_frame(CLOSE, struct.pack(">H", 1000), mask=True))
        finally:
            self.sock.close()
