"""``guard policy test``: run a policy's ``examples`` like unit tests, with a readable diff on failure.

Each example names a text, where it goes (a destination host or a tier), the decision the policy
must reach, and optionally the entity types it must act on (``expect_entities``) and the types it
must find but let through (``expect_allowed``). Both are compared as sets, exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from guard.authoring.spans import mark_spans, one_line
from guard.engine import Engine, Outcome
from guard.policy import ExampleCase, Policy
from guard.verdict import Finding, Verdict

# What "found but let through" means for ``expect_allowed``.
LET_THROUGH = frozenset({
    Outcome.ALLOW_LISTED, Outcome.ALLOWED_BY_RULE, Outcome.ALLOWED_BY_TIER, Outcome.WITHIN_TIER,
})


@dataclass(frozen=True)
class CaseResult:
    """One example and what the policy did with it."""

    index: int
    line: int | None
    case: ExampleCase
    verdict: Verdict
    allowed: tuple[Finding, ...]

    @property
    def acted_types(self) -> frozenset[str]:
        return frozenset(f.entity_type for f in self.verdict.findings)

    @property
    def allowed_types(self) -> frozenset[str]:
        return frozenset(f.entity_type for f in self.allowed)

    @property
    def decision_ok(self) -> bool:
        return self.verdict.decision.value == self.case.expect_decision

    def missing(self) -> list[str]:
        return sorted(set(self.case.expect_entities or ()) - self.acted_types)

    def unexpected(self) -> list[str]:
        if self.case.expect_entities is None:
            return []
        return sorted(self.acted_types - set(self.case.expect_entities))

    def missing_allowed(self) -> list[str]:
        return sorted(set(self.case.expect_allowed or ()) - self.allowed_types)

    def unexpected_allowed(self) -> list[str]:
        if self.case.expect_allowed is None:
            return []
        return sorted(self.allowed_types - set(self.case.expect_allowed))

    @property
    def passed(self) -> bool:
        return self.decision_ok and not (
            self.missing() or self.unexpected() or self.missing_allowed() or self.unexpected_allowed())


@dataclass(frozen=True)
class FileResult:
    """The examples of one policy file."""

    path: str
    policy: Policy
    cases: tuple[CaseResult, ...]

    @property
    def failed(self) -> int:
        return sum(not c.passed for c in self.cases)


def run_examples(engine: Engine, lines: Sequence[int | None] = ()) -> list[CaseResult]:
    """Run every example of ``engine.policy``; ``lines`` are their lines in the file, if known."""
    results = []
    for index, case in enumerate(engine.policy.examples):
        tier = case.tier or engine.policy.tier_for_destination(case.destination)
        verdict = engine.inspect(case.text, case.destination, tier=tier)
        allowed: tuple[Finding, ...] = ()
        if case.expect_allowed is not None:
            allowed = tuple(c.finding for c in engine.candidates(case.text, tier=tier)
                            if c.outcome in LET_THROUGH)
        line = lines[index] if index < len(lines) else None
        results.append(CaseResult(index, line, case, verdict, allowed))
    return results


def render_results(result: FileResult, out: IO[str]) -> None:
    """One line per example (``ok`` / ``FAIL``), the differences under each failure, a summary."""
    policy = result.policy
    out.write(f"{result.path}: {policy.name} {policy.version}, {len(result.cases)} examples\n")
    if not result.cases:
        out.write("  (no examples: nothing tested)\n")
    for case in result.cases:
        where = f"{result.path}:{case.line}" if case.line else f"{result.path} examples[{case.index}]"
        title = case.case.note or one_line(case.case.text)
        out.write(f"  {'ok  ' if case.passed else 'FAIL'}  {where}  {title}\n")
        if not case.passed:
            _render_failure(case, out)
    passed = len(result.cases) - result.failed
    out.write(f"  {passed} passed, {result.failed} failed\n")


def _render_failure(case: CaseResult, out: IO[str]) -> None:
    pad = " " * 8
    spans = [(f.start, f.end, f.entity_type) for f in case.verdict.findings]
    spans += [(f.start, f.end, f"{f.entity_type}(allowed)") for f in case.allowed]
    marked = mark_spans(case.case.text, spans).replace("\n", "\n" + pad + " " * 10)
    where = case.case.tier or case.case.destination or "external (no destination)"
    out.write(f"{pad}text      {marked}\n")
    out.write(f"{pad}to        {where}  (tier {case.verdict.tier})\n")
    decision = f"expected {case.case.expect_decision}, got {case.verdict.decision.value}"
    out.write(f"{pad}decision  {decision}{'' if case.decision_ok else '   <- differs'}\n")
    if case.case.expect_entities is not None:
        _write_set_diff(out, pad, "entities", case.acted_types, case.missing(), case.unexpected())
    if case.case.expect_allowed is not None:
        _write_set_diff(out, pad, "allowed", case.allowed_types, case.missing_allowed(),
                        case.unexpected_allowed())


def _write_set_diff(out: IO[str], pad: str, label: str, actual: frozenset[str], missing: list[str],
                    unexpected: list[str]) -> None:
    if not missing and not unexpected:
        out.write(f"{pad}{label:<10}as expected: {', '.join(sorted(actual)) or '(none)'}\n")
        return
    lines = ([f"missing:    {', '.join(missing)}"] if missing else []) + (
        [f"unexpected: {', '.join(unexpected)}"] if unexpected else [])
    out.write(f"{pad}{label:<10}{lines[0]}\n")
    for line in lines[1:]:
        out.write(f"{pad}{'':<10}{line}\n")
