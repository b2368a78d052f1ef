"""Checkpoints: the chain head (sequence, length, hash, time), signed and written outside the database.

A database writer can delete the newest events and rewind ``chain_head``, or wipe every event and reset
it: the chain left behind is consistent. A checkpoint kept elsewhere (a file on another disk, the
structlog stream a SIEM keeps) remembers what the head was, so ``guard audit verify --checkpoints``
notices a store that has lost its tail or been reset. In a keyed store a checkpoint is an HMAC under
the audit key, so one cannot be forged to match a rewritten store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from guard.audit import chain
from guard.audit.keys import AuditKeys

EVENT = "audit_checkpoint"
FILE_NAME = "guard-audit-checkpoints.jsonl"


@dataclass(frozen=True)
class Checkpoint:
    seq: int               # the newest event's sequence number
    length: int            # how many events the chain held
    hash: str              # the newest link
    time: str              # when the checkpoint was taken (UTC, ISO)
    key_id: str = ""       # the audit key that signed it ("" in a keyless store)
    mac: str = ""

    def signed_part(self) -> str:
        return chain.canonical({"seq": self.seq, "length": self.length, "hash": self.hash, "time": self.time})

    def fields(self) -> dict[str, object]:
        return {"seq": self.seq, "length": self.length, "hash": self.hash, "time": self.time,
                "key_id": self.key_id, "mac": self.mac}


def _mac(key: bytes, checkpoint: Checkpoint) -> str:
    return hmac.new(key, checkpoint.signed_part().encode(), hashlib.sha256).hexdigest()


def take(seq: int, length: int, head_hash: str, keys: AuditKeys | None,
         now: datetime | None = None) -> Checkpoint:
    moment = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="milliseconds")
    unsigned = Checkpoint(seq, length, head_hash, moment)
    if keys is None:
        return unsigned
    key = keys.current
    return Checkpoint(seq, length, head_hash, moment, key.key_id, _mac(key.checkpoint_key, unsigned))


def signature_problem(checkpoint: Checkpoint, keys: AuditKeys | None) -> str:
    """Why a checkpoint's signature cannot be trusted, or "" when it is good (or the store is keyless)."""
    if not checkpoint.key_id:
        return "is not signed" if keys is not None else ""
    key = keys.by_id(checkpoint.key_id) if keys else None
    if key is None:
        return f"was signed with audit key {checkpoint.key_id}, which is not loaded"
    if not hmac.compare_digest(_mac(key.checkpoint_key, checkpoint), checkpoint.mac):
        return "signature does not match (forged or altered)"
    return ""


@dataclass(frozen=True)
class ReadCheckpoint:
    """A checkpoint as read from a file, with where it was (to name it in a report)."""

    line: int
    checkpoint: Checkpoint | None
    problem: str = ""

    @property
    def name(self) -> str:
        if self.checkpoint is None:
            return f"checkpoint at line {self.line}"
        return (f"checkpoint at line {self.line} ({self.checkpoint.time}, event #{self.checkpoint.seq}, "
                f"{self.checkpoint.length} events)")


def parse(lines: Iterable[str]) -> list[ReadCheckpoint]:
    """Checkpoints from a checkpoint file or a SIEM export of the guard's JSON log (other lines skipped)."""
    out = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or (EVENT not in line and '"mac"' not in line):
            continue
        try:
            data = _plain(json.loads(line))
            if data.get("event", EVENT) != EVENT:
                continue
            checkpoint = Checkpoint(int(data["seq"]), int(data["length"]), str(data["hash"]),
                                    str(data["time"]), str(data.get("key_id", "")), str(data.get("mac", "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            out.append(ReadCheckpoint(number, None, "is not a readable checkpoint"))
            continue
        out.append(ReadCheckpoint(number, checkpoint))
    return out


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """A log line in Elastic Common Schema names (``--log-format ecs``) back in the plain ones."""
    if "guard.seq" not in data:
        return data
    plain = {key.removeprefix("guard."): value for key, value in data.items()}
    plain["event"], plain["time"] = data.get("message"), data.get("@timestamp")
    return plain


def read(path: str | Path) -> list[ReadCheckpoint]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse(f)


class CheckpointLog:
    """Where the writer puts checkpoints: a JSON-lines file (appended, fsync'ed) and the structlog stream."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._log = structlog.get_logger("guard.audit")

    @classmethod
    def beside(cls, journal_path: str | Path) -> CheckpointLog:
        return cls(Path(journal_path).with_name(FILE_NAME))

    def write(self, checkpoint: Checkpoint) -> None:
        """Log the checkpoint, then append it to the file; raises OSError when the file cannot be written."""
        self._log.info(EVENT, **checkpoint.fields())
        line = json.dumps({"event": EVENT, **checkpoint.fields()}, separators=(",", ":")) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
