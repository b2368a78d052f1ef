#!/usr/bin/env python3
"""Group the PERSON recognizer's misses and false names by kind, for error analysis on held-out records.

Usage (from the repository root)::

    python tools/names_errors.py NAMES_DIR/news_tw.jsonl --prefix PDT --fold 0 \\
        [--model held_out.crfsuite] [--net held_out_net.npz] [--threshold 0.5]

Meant for the gold records a model did NOT train on (``tools/train_names.py --holdout-fold K`` leaves
fold K out): it prints counts per kind, never the sentences, so analysis needs no reading of dev text.
Counting is ``shared/eval/score.py``'s (overlap).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recognizers.analyzer import analyze, build_analyzer
from recognizers.name_tagger import WEIGHTS_PATH, NameTagger, TaggerWeights
from recognizers.person import ChinesePersonRecognizer
from tools.train_names import in_fold, person_spans, read_records

_DOTS = "·‧•・．."


def kind(text: str, start: int, end: int, lex) -> str:  # type: ignore[no-untyped-def]
    """A coarse kind of a name-like span, from its shape and the lexicons the recognizer has."""
    span = text[start:end]
    simplified = lex.to_simplified(span)
    after = text[end:end + 2]
    if any(ch in _DOTS for ch in span):
        return "dotted (transliteration/indigenous)"
    if not any("\u3400" <= ch <= "\u9fff" for ch in span):
        return "Latin script"
    first2 = simplified[:2]
    starts_with_surname = first2 in lex.features.compound_surnames or simplified[:1] in lex.features.surnames
    if len(span) == 1:
        return "one character (surname alone: 江主席)" if starts_with_surname else "one character, other"
    if len(span) >= 4 and first2 not in lex.features.compound_surnames:
        return "4+ characters (transliteration/married name)"
    if not starts_with_surname:
        return f"{len(span)} characters, no surname first (given name, nickname, transliteration)"
    if simplified in lex.freq and simplified not in lex.name_tagged:
        return f"{len(span)} characters, surname + dictionary word"
    if after[:1] and after[:1] in "路街大中小國高縣市":
        return f"{len(span)} characters, before a place suffix"
    return f"{len(span)} characters, surname + given name"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("--prefix", default="", help="only records whose id starts with this")
    parser.add_argument("--fold", type=int, default=-1, help="only this fold of them (train_names.py's)")
    parser.add_argument("--model", type=Path, default=None, help="another .crfsuite model")
    parser.add_argument("--net", type=Path, default=None, help="a network (train_names_net.py's .npz)")
    parser.add_argument("--threshold", type=float, default=0.5, help="the policy's PERSON min_score")
    args = parser.parse_args(argv)

    records = read_records(args.records, (args.prefix,))
    if args.fold >= 0:
        records = in_fold(records, args.fold)
    recognizer = ChinesePersonRecognizer()
    recognizer.ensure_loaded()
    weights = WEIGHTS_PATH
    if args.model is not None:  # tagging reads the weights file that train_names.py writes beside the model
        weights = args.model.with_suffix(".npz")
        if not weights.is_file():
            TaggerWeights.from_crfsuite(args.model).save(weights)
    if args.model is not None or args.net is not None:
        recognizer._tagger = NameTagger(recognizer.feature_lexicon(), weights, args.net)
    lex = recognizer._lexicon
    analyzer = build_analyzer([recognizer])
    missed: Counter[str] = Counter()
    false: Counter[str] = Counter()
    names: Counter[str] = Counter()
    true_pos = 0
    for record in records:
        text = str(record["text"])
        found = [(r.start, r.end) for r in analyze(analyzer, text) if r.score >= args.threshold]
        truth = person_spans(record)
        for s, e in truth:
            k = kind(text, s, e, lex)
            names[k] += 1
            if not any(fs < e and s < fe for fs, fe in found):
                missed[k] += 1
        for s, e in found:
            if any(s < te and ts < e for ts, te in truth):
                true_pos += 1
            else:
                false[kind(text, s, e, lex)] += 1
    gold = sum(names.values())
    n_false = sum(false.values())
    print(f"{len(records)} records, {gold} names: precision {true_pos / max(1, true_pos + n_false):.3f}"
          f" recall {1 - sum(missed.values()) / max(1, gold):.3f}")
    print(f"{'kind':58} {'names':>6} {'missed':>6} {'false':>6}")
    for k in sorted(set(names) | set(false), key=lambda k: -(missed[k] + false[k])):
        print(f"{k:58} {names[k]:6} {missed[k]:6} {false[k]:6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
