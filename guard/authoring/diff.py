"""``guard policy diff``: what a policy change would do to a corpus, before it ships.

Both policies' engines run in one process over the same records. The report counts records whose
decision changes (a from → to matrix), findings added and removed by entity type, and keeps a few
examples of each change. Examples are masked (``guard.audit.masking``): the corpus may be real
prompts, so no detected value is ever printed in the clear.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from guard.audit.masking import FoundAt, mask_text, mask_value
from guard.authoring.spans import windows
from guard.engine import Engine
from guard.policy import Policy
from guard.verdict import Finding, Verdict

DEFAULT_EXAMPLES = 3


@dataclass(frozen=True)
class CorpusRecord:
    """One corpus line: ``{"id", "text"}`` and an optional ``destination``."""

    id: Any
    text: str
    destination: str | None = None


@dataclass(frozen=True)
class Change:
    """One record whose decision or findings differ between the two policies."""

    record: CorpusRecord
    old: Verdict
    new: Verdict
    added: tuple[Finding, ...]
    removed: tuple[Finding, ...]

    @property
    def decision_changed(self) -> bool:
        return self.old.decision is not self.new.decision


@dataclass
class PolicyDiff:
    """Counts and examples of the changes between two policies on one corpus."""

    old: Policy
    new: Policy
    max_examples: int = DEFAULT_EXAMPLES
    records: int = 0
    changed_records: int = 0
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)     # (from, to), changes only
    added: Counter[str] = field(default_factory=Counter)                    # findings by entity type
    removed: Counter[str] = field(default_factory=Counter)
    decision_examples: dict[tuple[str, str], list[Change]] = field(default_factory=dict)
    # keyed by ("added" | "removed", entity type)
    finding_examples: dict[tuple[str, str], list[Change]] = field(default_factory=dict)

    def add(self, change: Change | None) -> None:
        self.records += 1
        if change is None:
            return
        self.changed_records += 1
        if change.decision_changed:
            key = (change.old.decision.value, change.new.decision.value)
            self.decisions[key] += 1
            self._example(self.decision_examples, key, change)
        for kind, findings, counter in (("added", change.added, self.added),
                                        ("removed", change.removed, self.removed)):
            for entity_type in sorted({f.entity_type for f in findings}):
                counter[entity_type] += sum(f.entity_type == entity_type for f in findings)
                self._example(self.finding_examples, (kind, entity_type), change)

    def _example(self, into: dict[tuple[str, str], list[Change]], key: tuple[str, str],
                 change: Change) -> None:
        kept = into.setdefault(key, [])
        if len(kept) < self.max_examples:
            kept.append(change)

    @property
    def decision_changes(self) -> int:
        return sum(self.decisions.values())


def _key(f: Finding) -> tuple[int, str, int, int]:
    return (f.segment, f.entity_type, f.start, f.end)


def compare(record: CorpusRecord, old: Engine, new: Engine) -> Change | None:
    """The change one record sees, or None when decision and findings are the same."""
    before = old.inspect(record.text, record.destination)
    after = new.inspect(record.text, record.destination)
    old_keys = {_key(f) for f in before.findings}
    new_keys = {_key(f) for f in after.findings}
    added = tuple(f for f in after.findings if _key(f) not in old_keys)
    removed = tuple(f for f in before.findings if _key(f) not in new_keys)
    if before.decision is after.decision and not added and not removed:
        return None
    return Change(record, before, after, added, removed)


def diff_policies(old: Engine, new: Engine, records: Iterable[CorpusRecord],
                  max_examples: int = DEFAULT_EXAMPLES) -> PolicyDiff:
    report = PolicyDiff(old.policy, new.policy, max_examples)
    for record in records:
        report.add(compare(record, old, new))
    return report


# ---------------------------------------------------------------- masked examples

def _found_at(f: Finding) -> FoundAt:
    return FoundAt(f.entity_type, f.segment, f.start, f.end, f.score, "")


def _masked_example(change: Change) -> dict[str, Any]:
    """A change with every finding of either policy masked in the text and in the lists."""
    text = change.record.text
    everything = [_found_at(f) for f in (*change.old.findings, *change.new.findings)]
    masked = mask_text(text, everything)
    changed = [(f.start, f.end) for f in (*change.added, *change.removed)]

    def finding(f: Finding) -> dict[str, Any]:
        return {"entity_type": f.entity_type, "start": f.start, "end": f.end, "score": round(f.score, 4),
                "masked": mask_value(f.entity_type, text[f.start:f.end])}

    return {
        "id": change.record.id,
        "destination": change.record.destination,
        "decision": {"old": change.old.decision.value, "new": change.new.decision.value},
        "text": windows(masked, changed),
        "added": [finding(f) for f in change.added],
        "removed": [finding(f) for f in change.removed],
    }


# ---------------------------------------------------------------- output

def _policy(policy: Policy) -> dict[str, str]:
    return {"name": policy.name, "version": policy.version, "source": policy.source}


def diff_report(report: PolicyDiff, corpus: str) -> dict[str, Any]:
    """The diff as plain data (the ``--json`` output)."""
    types = sorted(set(report.added) | set(report.removed))
    return {
        "old": _policy(report.old),
        "new": _policy(report.new),
        "corpus": corpus,
        "records": report.records,
        "records_changed": report.changed_records,
        "decisions_changed": report.decision_changes,
        "decision_changes": [
            {"from": old, "to": new, "count": count,
             "examples": [_masked_example(c) for c in report.decision_examples.get((old, new), [])]}
            for (old, new), count in sorted(report.decisions.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "findings": {t: {"added": report.added[t], "removed": report.removed[t]} for t in types},
        "finding_changes": [
            {"entity_type": t, "change": kind, "count": counter[t],
             "examples": [_masked_example(c) for c in report.finding_examples.get((kind, t), [])]}
            for t in types
            for kind, counter in (("added", report.added), ("removed", report.removed))
            if counter[t]
        ],
    }


def render_diff_json(report: PolicyDiff, corpus: str, out: IO[str]) -> None:
    out.write(json.dumps(diff_report(report, corpus), ensure_ascii=False, indent=2) + "\n")


def render_diff(report: PolicyDiff, corpus: str, out: IO[str]) -> None:
    """The diff for a person at a terminal."""
    data = diff_report(report, corpus)
    old, new = data["old"], data["new"]
    out.write(f"old  {old['name']} {old['version']}  ({old['source']})\n")
    out.write(f"new  {new['name']} {new['version']}  ({new['source']})\n")
    out.write(f"corpus {corpus}: {data['records']} records, {data['records_changed']} changed "
              f"({data['decisions_changed']} with another decision)\n")
    if not data["records_changed"]:
        out.write("\nno record changes\n")
        return
    out.write(f"\n{'decisions (old -> new)':<30}{'records':>9}\n")
    for change in data["decision_changes"]:
        out.write(f"  {change['from'] + ' -> ' + change['to']:<28}{change['count']:>9}\n")
    out.write(f"  {'unchanged':<28}{data['records'] - data['decisions_changed']:>9}\n")
    out.write(f"\n{'findings by entity type':<30}{'added':>9}{'removed':>9}\n")
    for entity_type, counts in data["findings"].items():
        out.write(f"  {entity_type:<28}{counts['added']:>9}{counts['removed']:>9}\n")
    if not data["findings"]:
        out.write("  (no findings added or removed)\n")
    for change in data["decision_changes"]:
        _render_examples(f"decision {change['from']} -> {change['to']}, records", change, out)
    for change in data["finding_changes"]:
        _render_examples(f"{change['entity_type']} findings {change['change']}", change, out)


def _render_examples(title: str, change: dict[str, Any], out: IO[str]) -> None:
    examples = change["examples"]
    out.write(f"\nexamples: {title} ({change['count']}; {len(examples)} record(s) shown, masked)\n")
    for example in examples:
        decision = example["decision"]
        out.write(f"  {example['id']}  {decision['old']} -> {decision['new']}"
                  + (f"  to {example['destination']}" if example["destination"] else "") + "\n")
        out.write(f"      {example['text'].replace(chr(10), '⏎')}\n")
        for sign, kind in (("+", "added"), ("-", "removed")):
            for f in example[kind]:
                out.write(f"      {sign} {f['entity_type']} [{f['start']}:{f['end']}] {f['masked']}"
                          f"  score {f['score']:.2f}\n")
