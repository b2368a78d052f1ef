"""The spool journal: where events wait, fsync'ed, while the audit store cannot be reached.

JSON lines, appended and synced before the caller is told the event is kept; replayed into the store
(which skips events it already has) and then emptied. A line torn by a crash mid-write was never
acknowledged, so it is dropped on replay.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from guard.audit.evidence import SealedEvidence
from guard.audit.store import StoredEvent


def _to_line(item: StoredEvent) -> str:
    sealed = item.evidence
    data: dict[str, Any] = {"record": dict(item.record), "evidence": None}
    if sealed is not None:
        data["evidence"] = {
            "key_id": sealed.key_id, "nonce": base64.b64encode(sealed.nonce).decode(),
            "ciphertext": base64.b64encode(sealed.ciphertext).decode(),
            "expires": item.evidence_expires.isoformat() if item.evidence_expires else None,
        }
    if item.thumbnails:
        data["thumbnails"] = [base64.b64encode(t).decode() for t in item.thumbnails]
        data["expires"] = item.evidence_expires.isoformat() if item.evidence_expires else None
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


def _from_line(line: str) -> StoredEvent:
    data = json.loads(line)
    sealed = data.get("evidence")
    thumbnails = tuple(base64.b64decode(t) for t in data.get("thumbnails") or ())
    when = (sealed or {}).get("expires") or data.get("expires")
    expires = datetime.fromisoformat(when) if when else None
    if not sealed:
        return StoredEvent(data["record"], None, expires, thumbnails)
    return StoredEvent(data["record"], SealedEvidence(sealed["key_id"], base64.b64decode(sealed["nonce"]),
                                                      base64.b64decode(sealed["ciphertext"])), expires,
                       thumbnails)


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, items: Sequence[StoredEvent]) -> None:
        """Write and fsync; raises OSError when the events could not be kept (the caller fails closed)."""
        data = "".join(_to_line(item) for item in items).encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending(self) -> tuple[list[StoredEvent], int]:
        """The spooled events, and how many lines they came from (to ``clear`` afterwards)."""
        with self._lock:
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return [], 0
        items = []
        lines = 0
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # torn by a crash before its fsync returned: never acknowledged
            lines += 1
            try:
                items.append(_from_line(line))
            except (ValueError, KeyError):
                continue
        return items, lines

    def clear(self, count: int) -> None:
        """Remove the first ``count`` entries (those now in the store); later appends are kept."""
        with self._lock:
            try:
                lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
            except FileNotFoundError:
                return
            rest = "".join(line for line in lines[count:] if line.endswith("\n"))
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, rest.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)

    def __len__(self) -> int:
        return len(self.pending()[0])
