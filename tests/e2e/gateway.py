"""A small forwarding web gateway (an HTTP CONNECT proxy) standing in for an agency's existing proxy.

The guard chains to it with ``--set mode=upstream:http://127.0.0.1:PORT``. It tunnels every CONNECT
byte for byte and records which ``host:port`` each one asked for; anything but CONNECT gets a 501.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading


class _Tunnel(socketserver.BaseRequestHandler):
    server: Gateway
    request: socket.socket

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        head, _, early = head.partition(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\n\r\n")
            return
        self.server.record(target)
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except OSError:
            self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            return
        with upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early:
                upstream.sendall(early)
            _pipe(self.request, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until either side closes or both stay idle for 30 seconds."""
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 30)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[sock].sendall(data)


class Gateway(socketserver.ThreadingTCPServer):
    """The gateway on a free loopback port; ``connects`` lists every CONNECT target, in order."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.connects: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, target: str) -> None:
        with self._lock:
            self.connects.append(target)

    def start(self) -> Gateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        with contextlib.suppress(OSError):
            self.server_close()
