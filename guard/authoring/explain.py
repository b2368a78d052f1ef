"""``guard explain``: every candidate each recognizer produced for a text, and what the policy made of it.

The report is built only from ``Engine.candidates(explain=True)`` and ``Engine.inspect``: scores,
context words, thresholds, allow-list hits and outcomes are the engine's own, never re-derived here.
Values are shown in the clear: the author typed the text, and explain is a local tool.
"""

from __future__ import annotations

from typing import IO, Any

from guard.engine import Candidate, Engine, Outcome
from guard.policy import split_host_port
from guard.verdict import Finding
from recognizers.context import PREFIX_CHARS, SUFFIX_CHARS

_SHOWN_CONTEXT_WORDS = 10


def explain_report(engine: Engine, text: str, destination: str | None = None) -> dict[str, Any]:
    """The whole explanation as plain data (the ``--json`` output; the text output renders it)."""
    tier = engine.policy.tier_for_destination(destination)
    service = engine.policy.service_for_host(*split_host_port(destination)) if destination else None
    candidates = engine.candidates(text, tier=tier, explain=True, service=service)
    verdict = engine.inspect(text, destination)
    return {
        "policy": {"name": engine.policy.name, "version": engine.policy.version,
                   "source": engine.policy.source},
        "destination": destination,
        "tier": tier,
        "text": text,
        "candidates": [_candidate(c, text) for c in candidates],
        "decision": verdict.decision.value,
        "findings": [f.to_contract() for f in verdict.findings],
        "redacted_text": verdict.redacted_text,
        "guideline_points": list(verdict.guideline_points),
    }


def _finding_ref(f: Finding) -> dict[str, Any]:
    return {"entity_type": f.entity_type, "start": f.start, "end": f.end, "score": round(f.score, 4)}


def _candidate(c: Candidate, text: str) -> dict[str, Any]:
    f = c.finding
    return {
        "entity_type": f.entity_type,
        "start": f.start,
        "end": f.end,
        "value": text[f.start:f.end],
        "recognizer": f.recognizer,
        "pattern": c.pattern or None,
        "score": round(f.score, 4),
        "base_score": round(c.base_score, 4) if c.base_score is not None else None,
        "validation": c.validation,
        "context_word": f.context_word,
        "context_by_recognizer": c.context_by_recognizer,
        "context_words": list(c.context_words),
        "classification_level": f.classification_level.name if f.classification_level is not None else None,
        "rule": {"action": c.rule.action, "min_score": c.rule.min_score,
                 "guideline_point": c.rule.guideline_point, "source": c.rule_source},
        "allow_listed": c.allow_listed,
        "outcome": c.outcome.name.lower(),
        "reason": c.outcome.value,
        "overlapped_by": _finding_ref(c.overlapped_by) if c.overlapped_by is not None else None,
        "explanation": c.explanation or None,
    }


def render_explain(engine: Engine, text: str, destination: str | None, out: IO[str]) -> None:
    """The explanation for a person at a terminal."""
    report = explain_report(engine, text, destination)
    policy = report["policy"]
    out.write(f"policy {policy['name']} {policy['version']}  ({policy['source']})\n")
    out.write(f"destination tier: {report['tier']}\n")
    if not report["candidates"]:
        out.write("no recognizer produced a candidate\n")
    for c in report["candidates"]:
        _render_candidate(c, out)
    out.write(f"\ndecision: {report['decision']}\n")
    out.write(outcome_lines(report["decision"], text, report["redacted_text"], report["guideline_points"]))


def outcome_lines(decision: str, text: str, redacted_text: str, guideline_points: list[int]) -> str:
    """What the decision does to the request, said the way the proxy carries it out."""
    points = "、".join(str(p) for p in guideline_points)
    cited = f" (guideline point {points})" if points else ""
    if decision == "block":
        return f"blocked: nothing is sent to the AI service; the user is told why{cited}\n"
    if decision == "warn":
        return ("held: sent only after the user states a reason on a line of its own "
                "(查詢事由：…) or in an X-Guard-Reason header\n")
    if redacted_text != text:
        return f"redacted: {redacted_text}\n"
    return "allowed: sent unchanged\n"


def _render_candidate(c: dict[str, Any], out: IO[str]) -> None:
    rule = c["rule"]
    out.write(f"\n{c['entity_type']}  [{c['start']}:{c['end']}]  {c['value']!r}\n")
    pattern = f" / pattern {c['pattern']}" if c["pattern"] else ""
    out.write(f"  recognizer  {c['recognizer']}{pattern}\n")
    out.write(f"  score       {c['score']:.2f}   (rule: {rule['action']} at >= {rule['min_score']:.2f}"
              f", from {rule['source']})\n")
    if c["validation"] is not None:
        verdict = "valid: score set to 1.00" if c["validation"] else "invalid: match dropped"
        base = f" (pattern score {c['base_score']:.2f})" if c["base_score"] is not None else ""
        out.write(f"  validator   {verdict}{base}\n")
    out.write(f"  context     {_context_line(c)}\n")
    if c["classification_level"] is not None:
        out.write(f"  level       {c['classification_level']}\n")
    out.write(f"  allow-list  {'listed' if c['allow_listed'] else 'not listed'}\n")
    if c["explanation"]:
        out.write(f"  why         {c['explanation']}\n")
    out.write(f"  outcome     {_outcome_line(c)}\n")


def _context_line(c: dict[str, Any]) -> str:
    base = c["base_score"]
    if c["context_word"]:
        if base is not None and base < c["score"] and not c["validation"]:
            return f"{c['context_word']!r} raised the score from {base:.2f} to {c['score']:.2f}"
        return f"{c['context_word']!r} found nearby"
    if c["context_by_recognizer"]:
        change = f" ({base:.2f} -> {c['score']:.2f})" if base is not None and base != c["score"] else ""
        return f"weighed by the recognizer itself{change}"
    words = c["context_words"]
    if words:
        shown = ", ".join(words[:_SHOWN_CONTEXT_WORDS]) + (" …" if len(words) > _SHOWN_CONTEXT_WORDS else "")
        return (f"none found within {PREFIX_CHARS} characters before or {SUFFIX_CHARS} after"
                f" (looks for: {shown})")
    return "this recognizer uses no context words"


def _outcome_line(c: dict[str, Any]) -> str:
    reason = str(c["reason"])
    if c["outcome"] == Outcome.BELOW_THRESHOLD.name.lower():
        return f"{reason} ({c['score']:.2f} < {c['rule']['min_score']:.2f})"
    if c["overlapped_by"] is not None:
        o = c["overlapped_by"]
        return f"{reason}: {o['entity_type']} [{o['start']}:{o['end']}] score {o['score']:.2f}"
    return reason
