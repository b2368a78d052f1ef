"""Dump every candidate and verdict the engine produces, to diff one build of guard against another.

``python tools/engine_equivalence.py [--jsonl FILE ...] [--explain] > dump.jsonl`` inspects each text
(default: the project's own sample corpus) and writes one JSON line per text with every candidate
(entity, start, end, score, outcome, recognizer, context word, pattern) and the verdict, then one line
per multi-segment request built from the same texts (consecutive texts as messages, and every text
cut in two or three pieces, so values split across segments are exercised). Run it with two
interpreters (e.g. ``main``'s venv and a branch's) and ``diff`` the outputs: an engine change that
must not change findings shows no difference. The script imports whatever ``guard`` the interpreter
has installed, so each venv measures its own tree.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _texts(paths: list[Path]) -> Iterator[tuple[str, str]]:
    for path in paths:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    record = json.loads(line)
                    yield f"{path.name}:{record.get('id', number)}", record["text"]


def _cuts(text: str, findings: list[tuple[int, int]]) -> list[list[str]]:
    """The text cut in two (in the middle) and in three pieces, and cut inside every value the text
    has (at its middle and after its first character): values split over content parts."""
    n = len(text)
    if n < 2:
        return []
    cuts = [[text[:n // 2], text[n // 2:]], [text[:n // 3], text[n // 3:2 * n // 3], text[2 * n // 3:]]]
    for start, end in findings:
        for at in sorted({start + 1, (start + end) // 2}):
            if start < at < end:
                cuts.append([text[:at], text[at:]])
    return cuts


def _candidate(c: Any) -> dict[str, Any]:
    f = c.finding
    return {"entity": f.entity_type, "start": f.start, "end": f.end, "score": round(f.score, 6),
            "outcome": c.outcome.name, "recognizer": f.recognizer, "context": f.context_word,
            "level": f.classification_level.name if f.classification_level is not None else None,
            "pattern": c.pattern, "explanation": c.explanation, "base_score": c.base_score,
            "validation": c.validation, "overlapped_by": None if c.overlapped_by is None else
            [c.overlapped_by.entity_type, c.overlapped_by.start, c.overlapped_by.end]}


def _verdict(v: Any) -> dict[str, Any]:
    return {"decision": v.decision.name,
            "findings": [[f.entity_type, f.segment, f.start, f.end, round(f.score, 6), f.recognizer,
                          f.context_word] for f in v.findings],
            "redacted": list(v.redacted), "placeholders": v.placeholders}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jsonl", type=Path, action="append", help="JSONL with a text field (repeatable)")
    parser.add_argument("--explain", action="store_true", help="also dump candidates(explain=True)")
    parser.add_argument("--no-segments", action="store_true", help="skip the multi-segment requests")
    args = parser.parse_args(argv)
    for name in ("jieba", "presidio-analyzer"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from guard.engine import Engine
    from guard.policy import load_policy
    from guard.sample_corpus import SAMPLE_CORPUS

    engine = Engine(load_policy(None))
    engine.warm_up()
    texts = list(_texts(args.jsonl or [SAMPLE_CORPUS]))
    out = sys.stdout
    values: dict[str, list[tuple[int, int]]] = {}
    for key, text in texts:
        verdict = engine.inspect(text)
        values[key] = [(f.start, f.end) for f in verdict.findings]
        row: dict[str, Any] = {"id": key, "candidates": [_candidate(c) for c in engine.candidates(text)],
                               "verdict": _verdict(verdict)}
        if args.explain:
            row["explain"] = [_candidate(c) for c in engine.candidates(text, explain=True)]
        out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    if args.no_segments:
        return 0
    for (key, text), (_, following) in itertools.pairwise(texts):
        requests = [[text, following], *_cuts(text, values[key])]
        for index, segments in enumerate(requests):
            row = {"id": f"{key}/segments{index}", "verdict": _verdict(engine.inspect_segments(segments))}
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
