"""One canonical event per inspected request, and the sinks it is recorded in.

An event says what was decided about a request and why (entity types with counts, the policy and
its version, the destination), never what the prompt contained: no detected value, no placeholder
map, no prompt text.
"""

from __future__ import annotations

import enum
import functools
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from guard.audit.masking import mask_path
from guard.verdict import Decision


class EventKind(enum.Enum):
    ALLOWED = "prompt_allowed"
    REDACTED = "prompt_redacted"
    BLOCKED = "prompt_blocked"
    WARNED = "prompt_warned"
    FAILED = "inspection_failed"

    @classmethod
    def for_decision(cls, decision: Decision) -> EventKind:
        return {Decision.ALLOW: cls.ALLOWED, Decision.REDACT: cls.REDACTED,
                Decision.BLOCK: cls.BLOCKED, Decision.WARN: cls.WARNED}[decision]


def new_event_id(now: datetime | None = None) -> str:
    """A short, time-ordered reference staff can quote in an appeal, e.g. ``20261121-8f3a61c2d4e5``."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d}-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class InspectionEvent:
    """What the guard decided about one request; safe to log, store and show to reviewers."""

    event_id: str
    kind: EventKind
    decision: str                       # allow | warn | redact | block | error
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    user: str = ""
    client: str = ""
    service: str = ""
    host: str = ""
    path: str = ""
    method: str = ""
    entities: Mapping[str, int] = field(default_factory=dict)
    policy_name: str = ""
    policy_version: str = ""
    tier: str = ""
    latency_ms: float = 0.0
    request_bytes: int = 0
    segments: int = 0
    action_taken: str = ""              # what happened to the request: forwarded, rewritten, answered
    reason: str = ""                    # the user's stated reason (查詢事由) for a warned prompt
    error: str = ""                     # the failure class for inspection_failed; never a value
    # Masked windows around the findings, for reviewers (guard.audit.masking); kept in the store only.
    snippets: tuple[Mapping[str, Any], ...] = ()

    def fields(self) -> dict[str, Any]:
        """The event as a record (a new dict each call; the log and the store each take one)."""
        return dict(self._record)

    @functools.cached_property
    def _record(self) -> dict[str, Any]:
        # Built once per event, by hand: dataclasses.asdict deep-copies every snippet, for nothing.
        data = {name: getattr(self, name) for name in _EVENT_FIELDS}
        data["kind"] = self.kind.value
        data["path"] = mask_path(self.path)  # a path can carry an ID or a name: never kept raw
        data["entities"] = dict(self.entities)
        data["snippets"] = [dict(s) for s in self.snippets]
        return data


_EVENT_FIELDS = tuple(f.name for f in dataclass_fields(InspectionEvent))


class AuditSink(Protocol):
    """Where events go. ``record`` returns only when the event is safely kept (or raises)."""

    def record(self, event: InspectionEvent) -> None: ...


class LogSink:
    """Events as structlog records (JSON lines for the SIEM when not on a terminal)."""

    def __init__(self) -> None:
        self._log = structlog.get_logger("guard.audit")

    def record(self, event: InspectionEvent) -> None:
        fields = event.fields()
        kind = fields.pop("kind")
        fields.pop("snippets")  # prompt text, even masked, stays out of the SIEM stream
        self._log.info(kind, **fields)
