"""Length-prefixed frames between the proxy's event loop and its child processes (inspection workers,
the audit writer), read in the loop's own read callback.

A stream reader needs a task per channel that wakes for the length and again for the frame, and then
wakes the task waiting for the answer: three hand-overs per reply on a loop that drives every
connection. Here the loop's read callback cuts whole frames from what arrived and hands each to the
channel's owner at once. The frames are ``multiprocessing.Connection``'s (a signed 4-byte length, then
the bytes), so the child reads and writes them with ``recv_bytes`` and ``send_bytes``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable

HEADER = struct.Struct("!i")


class FrameChannel(asyncio.Protocol):
    """One child's socket: ``on_frame`` gets each whole frame; ``on_lost`` once, when the socket
    closes or ``on_frame`` raises (the channel is then aborted: a child that says something
    unreadable is treated as gone)."""

    def __init__(self, on_frame: Callable[[bytes], None], on_lost: Callable[[], None]) -> None:
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        if not buffer and len(data) >= HEADER.size and HEADER.unpack_from(data)[0] + HEADER.size == len(data):
            self._deliver(data[HEADER.size:])  # the usual case: exactly one frame arrived
            return
        buffer += data
        while len(buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer)
            end = HEADER.size + size
            if size < 0 or len(buffer) < end:
                if size < 0:
                    self.abort()
                return
            frame = bytes(buffer[HEADER.size:end])
            del buffer[:end]
            if not self._deliver(frame):
                return

    def _deliver(self, frame: bytes) -> bool:
        try:
            self._on_frame(frame)
        except Exception:
            self.abort()
            return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._buffer.clear()
        self._on_lost()

    def send(self, payload: bytes) -> None:
        if self._transport is None:
            raise ConnectionResetError("the channel is closed")
        self._transport.write(HEADER.pack(len(payload)) + payload)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


async def open_channel(sock: socket.socket, on_frame: Callable[[bytes], None],
                       on_lost: Callable[[], None]) -> FrameChannel:
    """Attach ``sock`` (one end of a socket pair) to the running loop."""
    loop = asyncio.get_running_loop()
    _, channel = await loop.create_unix_connection(lambda: FrameChannel(on_frame, on_lost), sock=sock)
    return channel
