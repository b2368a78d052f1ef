"""The typed values that flow from the engine to the proxy, the audit trail and the CLI."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Decision(enum.Enum):
    """What happens to a prompt; members are ordered by severity (``max`` picks the strictest)."""

    ALLOW = "allow"
    WARN = "warn"
    REDACT = "redact"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self.severity < other.severity


_SEVERITY = {Decision.ALLOW: 0, Decision.WARN: 1, Decision.REDACT: 2, Decision.BLOCK: 3}


class ClassificationLevel(enum.IntEnum):
    """Document classification levels, lowest to highest (國家機密保護法, 文書處理手冊)."""

    NONE = 0          # 普通: not classified
    GENERAL = 1       # 密: general official secret
    CONFIDENTIAL = 2  # 機密
    SECRET = 3        # 極機密
    TOP_SECRET = 4    # 絕對機密

    @classmethod
    def parse(cls, label: str) -> ClassificationLevel:
        """Map a level as written in a policy or a marking (Chinese or English) to a member."""
        key = label.strip().upper().replace(" ", "_")
        try:
            return _LEVEL_LABELS[key]
        except KeyError:
            raise ValueError(
                f"unknown classification level {label!r}; expected one of {sorted(_LEVEL_LABELS)}"
            ) from None


_LEVEL_LABELS = {
    "普通": ClassificationLevel.NONE, "NONE": ClassificationLevel.NONE,
    "密": ClassificationLevel.GENERAL, "密件": ClassificationLevel.GENERAL,
    "GENERAL": ClassificationLevel.GENERAL, "RESTRICTED": ClassificationLevel.GENERAL,
    "機密": ClassificationLevel.CONFIDENTIAL, "CONFIDENTIAL": ClassificationLevel.CONFIDENTIAL,
    "極機密": ClassificationLevel.SECRET, "SECRET": ClassificationLevel.SECRET,
    "絕對機密": ClassificationLevel.TOP_SECRET, "TOP_SECRET": ClassificationLevel.TOP_SECRET,
}


@dataclass(frozen=True)
class Finding:
    """One detected entity, at code-point offsets into the original text of one segment."""

    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str = ""
    segment: int = 0
    context_word: str | None = None
    classification_level: ClassificationLevel | None = None

    def to_contract(self) -> dict[str, object]:
        """The finding as ``guard scan --jsonl`` prints it (CONTRACT.md)."""
        return {"entity_type": self.entity_type, "start": self.start, "end": self.end,
                "score": round(self.score, 4)}


@dataclass(frozen=True)
class Verdict:
    """The engine's answer for one request: its segments inspected together.

    ``placeholders`` maps each placeholder put into ``redacted`` back to the original value, so the
    proxy can restore values in the reply. It is sensitive: keep it in memory, never log or store it.
    (A plain dict, not a read-only proxy, so that a verdict crosses a process pool by pickling.)
    """

    decision: Decision
    findings: tuple[Finding, ...]
    redacted: tuple[str, ...]
    placeholders: Mapping[str, str] = field(default_factory=dict)
    policy_name: str = ""
    policy_version: str = ""
    tier: str = "external"
    guideline_points: tuple[int, ...] = ()  # the guideline points the acted-on rules cite

    @property
    def redacted_text(self) -> str:
        """The single segment's redacted text (for one-text inspection)."""
        return self.redacted[0] if self.redacted else ""

    def entity_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.entity_type] = counts.get(f.entity_type, 0) + 1
        return dict(sorted(counts.items()))

    def __repr__(self) -> str:  # never print values or the placeholder map
        return (f"Verdict(decision={self.decision.value}, entities={self.entity_counts()}, "
                f"policy={self.policy_name}@{self.policy_version})")
