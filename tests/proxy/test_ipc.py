"""guard.ipc: frames between the event loop and a child's multiprocessing Connection, on a socket pair."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket

import pytest

from guard import ipc

# Sizes that cross the header, the socket buffer and the loop's read size (256 KiB) in every way.
SIZES = [0, 1, 3, 4, 5, 1000, 65_536, 262_143, 262_144, 262_145, 3_000_001]


def _pair() -> tuple[multiprocessing.connection.Connection, socket.socket]:
    ours, theirs = multiprocessing.Pipe(duplex=True)
    sock = socket.socket(fileno=os.dup(ours.fileno()))
    ours.close()
    return theirs, sock


def test_every_frame_arrives_whole_and_in_order_whatever_the_chunks() -> None:
    child, sock = _pair()
    payloads = [bytes([i % 251]) * size for i, size in enumerate(SIZES)]

    async def scenario() -> list[bytes]:
        got: list[bytes] = []
        lost = asyncio.Event()
        channel = await ipc.open_channel(sock, got.append, lost.set)
        for payload in payloads:  # the child's side writes them back to back
            await asyncio.to_thread(child.send_bytes, payload)
        raw = b"".join(ipc.HEADER.pack(len(p)) + p for p in payloads[:4])  # and a few in one write
        await asyncio.to_thread(os.write, child.fileno(), raw)
        channel.send(b"to the child")
        assert await asyncio.to_thread(child.recv_bytes) == b"to the child"
        child.close()
        await asyncio.wait_for(lost.wait(), 10)
        return got

    assert asyncio.run(scenario()) == [*payloads, *payloads[:4]]


@pytest.mark.parametrize("bad", ["raises", "negative length"])
def test_an_unreadable_word_closes_the_channel_and_reports_it_lost_once(bad: str) -> None:
    child, sock = _pair()
    calls: list[str] = []

    def on_frame(frame: bytes) -> None:
        calls.append("frame")
        if frame == b"bad":
            raise ValueError("unreadable")

    async def scenario() -> None:
        lost = asyncio.Event()

        def on_lost() -> None:
            calls.append("lost")
            lost.set()

        channel = await ipc.open_channel(sock, on_frame, on_lost)
        if bad == "raises":
            await asyncio.to_thread(os.write, child.fileno(), b"".join(
                ipc.HEADER.pack(len(p)) + p for p in (b"ok", b"bad", b"never read")))
        else:
            raw = ipc.HEADER.pack(2) + b"ok" + ipc.HEADER.pack(-5)
            await asyncio.to_thread(os.write, child.fileno(), raw)
        await asyncio.wait_for(lost.wait(), 10)
        with pytest.raises(ConnectionError):
            channel.send(b"after")

    asyncio.run(scenario())
    assert calls == (["frame", "frame", "lost"] if bad == "raises" else ["frame", "lost"])
    child.close()
