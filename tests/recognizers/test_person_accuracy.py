"""PERSON accuracy regression guard: the human-labelled dev splits the name tagger never trained on.

The corpora are research data the project does not ship (see README, "Names"): the test reads them from
``GUARD_NAMES_CORPUS`` or ``../shared/corpus/names`` beside the repository and skips, saying so, when
neither is there.  Counting is ``shared/eval/score.py``'s: a finding is right when it overlaps a
labelled name, a name is found when a finding overlaps it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recognizers.analyzer import analyze, build_analyzer
from recognizers.person import ChinesePersonRecognizer

_REPO = Path(__file__).resolve().parents[2]
CORPUS_DIR = Path(os.environ.get("GUARD_NAMES_CORPUS") or _REPO.parent / "shared" / "corpus" / "names")
THRESHOLD = 0.5  # the default policy's PERSON min_score

# (file, id prefix of the dev split, minimum precision, minimum recall): issue 12's bar where the
# shipped model meets it, else its measured score less a small margin (about two names), so a change
# that loses names or adds false ones fails here.
DEV_SPLITS = [
    ("news_tw.jsonl", "PDD", 0.93, 0.86),  # measured 0.943 / 0.873 (issue 12's bar: 0.93 / 0.93)
    ("social_tw.jsonl", "WBD", 0.80, 0.80),  # measured 0.809 / 0.841 (issue 12's bar: 0.80 / 0.80)
]


def _records(name: str, prefix: str) -> list[dict[str, object]]:
    path = CORPUS_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not present (set GUARD_NAMES_CORPUS to the folder holding {name})")
    with path.open(encoding="utf-8") as f:
        return [r for r in map(json.loads, filter(str.strip, f)) if str(r["id"]).startswith(prefix)]


@pytest.mark.parametrize(("name", "prefix", "min_precision", "min_recall"), DEV_SPLITS)
def test_person_on_dev_split(name: str, prefix: str, min_precision: float, min_recall: float) -> None:
    records = _records(name, prefix)
    analyzer = build_analyzer([ChinesePersonRecognizer()])
    true_pos = false_pos = gold = hit = 0
    for record in records:
        text = str(record["text"])
        found = [(r.start, r.end) for r in analyze(analyzer, text) if r.score >= THRESHOLD]
        names = [(int(e["start"]), int(e["end"])) for e in record["entities"]  # type: ignore[attr-defined]
                 if e["type"] == "PERSON"]
        gold += len(names)
        hit += sum(any(s < ne and ns < e for s, e in found) for ns, ne in names)
        for s, e in found:
            if any(s < ne and ns < e for ns, ne in names):
                true_pos += 1
            else:
                false_pos += 1
    precision = true_pos / max(1, true_pos + false_pos)
    recall = hit / max(1, gold)
    print(f"{name} {prefix}…: precision {precision:.3f} recall {recall:.3f} ({gold} names)")
    assert precision >= min_precision and recall >= min_recall, (precision, recall)
