"""Message framings that wrap JSON: Google's length-prefixed frames, SignalR ``\\x1e`` records, JSON lines.

Google (Gemini web ``StreamGenerate`` and ``batchexecute``): the body starts with the anti-XSSI prefix
``)]}'``, then each frame is ``<length>\\n<json>\\n`` where the length counts UTF-16 code units from
just after the digits, so both newlines included (HanaokaYuzu/Gemini-API ``utils/parsing.py``
``StreamingFrameParser`` reads it that way and waits for exactly that many units).

SignalR's JSON hub protocol (Bing/M365 Copilot chat hubs): every record is one JSON object followed by
the record separator ``\\x1e``; one WebSocket message may hold several records.
"""

from __future__ import annotations

import json
import re
from typing import Any

from guard.formats._tree import dumps

XSSI_PREFIX = ")]}'"
RECORD_SEPARATOR = "\x1e"

_LENGTH = re.compile(r"\s*(\d+)")


def utf16_units(text: str) -> int:
    """JavaScript's ``String.length``: characters outside the BMP count twice."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def google_frame(payload: Any) -> str:
    """One length-prefixed frame holding ``payload`` (the length recomputed for its content)."""
    return google_frame_text(dumps(payload))


def google_frame_text(json_text: str) -> str:
    content = f"\n{json_text}\n"
    return f"{utf16_units(content)}{content}"


def take_google_frame(buf: str) -> tuple[str, str, str] | None:
    """Split one complete frame off ``buf``: (the frame as it came, its JSON text, the rest).

    ``None`` when the frame is not complete yet. Raises ``ValueError`` when ``buf`` does not start
    with a length marker (after whitespace).
    """
    m = _LENGTH.match(buf)
    if m is None or m.end() == len(buf):
        if buf.strip() and not buf.strip().isdigit():
            raise ValueError("not a length-prefixed frame")
        return None
    want = int(m.group(1))
    pos, units = m.end(), 0
    while units < want and pos < len(buf):
        units += 2 if ord(buf[pos]) > 0xFFFF else 1
        pos += 1
    if units < want:
        return None
    return buf[:pos], buf[m.end():pos].strip(), buf[pos:]


def google_frames(body: str) -> list[Any]:
    """Every frame's JSON value of a complete Google reply (the ``)]}'`` prefix optional)."""
    rest = body.removeprefix(XSSI_PREFIX)
    out: list[Any] = []
    while rest.strip():
        taken = take_google_frame(rest)
        if taken is None:
            raise ValueError("truncated length-prefixed frame")
        _, text, rest = taken
        out.append(json.loads(text))
    return out


def signalr_records(text: str) -> list[str] | None:
    """The records of a SignalR message (each without its ``\\x1e``); ``None`` when it is not one."""
    if not text.endswith(RECORD_SEPARATOR):
        return None
    return text.split(RECORD_SEPARATOR)[:-1]


def signalr_message(records: list[Any]) -> str:
    return "".join(dumps(r) + RECORD_SEPARATOR for r in records)


def json_lines(text: str) -> list[str] | None:
    """The lines of an NDJSON text when there are two or more and every non-empty one is JSON."""
    lines = text.splitlines(keepends=True)
    if len([ln for ln in lines if ln.strip()]) < 2:
        return None
    for line in lines:
        if line.strip():
            try:
                json.loads(line)
            except (ValueError, RecursionError):
                return None
    return lines
