"""Requests written byte by byte through the guard's CONNECT tunnel: what curl and SDKs will not send.

Duplicate Host headers, a Host or absolute URI naming another host, an SNI that differs from the
CONNECT target, chunked bodies with trailers, duplicate JSON keys: each is written here exactly.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import time
from typing import Any

from tests.e2e.helpers import CurlResult, GuardProxy, parse_http_response


def exchange(proxy: GuardProxy, target: str, request: bytes, sni: str | None = None,
             timeout: float = 30.0) -> CurlResult:
    """CONNECT ``target`` (host:port), TLS with ``sni`` (None: no SNI), send ``request``, read the answer."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    try:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise AssertionError("the proxy closed the connection after CONNECT")
            head += chunk
        assert head.split(b" ", 2)[1] == b"200", head
        context = ssl.create_default_context(cafile=str(proxy.ca))
        context.check_hostname = False  # the SNI may name another host on purpose
        with context.wrap_socket(sock, server_hostname=sni) as tls:
            tls.sendall(request)
            data = _read_response(tls)
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    return parse_http_response(data)


def _read_response(tls: ssl.SSLSocket) -> bytes:
    """One response: by Content-Length when given, else until the connection closes."""
    data = b""
    while True:
        try:
            chunk = tls.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if sep and match and len(body) >= int(match.group(1)):
            break
    if not data:
        raise AssertionError("no answer from the proxy (connection closed without a response)")
    return data


def http_request(method: str, path: str, host: str, body: bytes = b"",
                 headers: tuple[tuple[str, str], ...] = (), target: str | None = None) -> bytes:
    """An HTTP/1.1 request; ``host`` is written as the Host header (pass "" to leave it out)."""
    lines = [f"{method} {target or path} HTTP/1.1"]
    if host:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chat_body(prompt: str, **extra: Any) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], **extra},
                      ensure_ascii=False).encode()


def event_with_id(proxy: GuardProxy, event_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The logged event a reply's ``x-guard-event-id`` names."""
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in proxy.events() if e.get("event_id") == event_id]
        if events or time.monotonic() > deadline:
            assert events, f"no event {event_id} in the proxy's log"
            return events[-1]
        time.sleep(0.1)
