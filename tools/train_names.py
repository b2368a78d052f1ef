#!/usr/bin/env python3
"""Train the person-name CRF shipped in ``recognizers/data/person_crf.crfsuite`` and print its dev scores.

Usage (from the repository root, with the ``train`` extra installed)::

    python tools/train_names.py --names-dir ../shared/corpus/names \
        [--silver silver.jsonl] [--out recognizers/data/person_crf.crfsuite]

``--names-dir`` holds ``news_tw.jsonl`` and ``social_tw.jsonl`` (records of ``dev.jsonl``'s format);
only their train records (ids ``PDT…`` and ``WBT…``) are trained on, the dev records (``PDD…``,
``WBD…``) are only scored.  ``--silver`` adds records labelled by a teacher model
(``tools/label_names_lac.py``).  Training is deterministic (L-BFGS, no sampling), so the same data
gives the same model; ``--seed`` fixes the silver sample that ``--silver-max`` takes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections.abc import Callable, Container, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recognizers.name_tagger import (
    METADATA_PATH,
    MODEL_PATH,
    Lexicon,
    features,
    labels_from_spans,
    pieces,
)
from recognizers.person import ChinesePersonRecognizer
from recognizers.text import fold

TRAIN_SETS = (("news_tw.jsonl", "PDT"), ("social_tw.jsonl", "WBT"))
DEV_SETS = (("news_tw.jsonl", "PDD"), ("social_tw.jsonl", "WBD"))
FOLDS = 5
_SWAPPED_LENGTH = 2  # names this long or longer are swapped by ``--replace-names``
_GOLD_GIVEN_MIN = 3  # a character of this many gold given names may be drawn for one


def read_records(path: Path, prefixes: Iterable[str] | None = None) -> list[dict[str, object]]:
    wanted = tuple(prefixes) if prefixes is not None else None
    with path.open(encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if wanted is None or str(r.get("id", "")).startswith(wanted)]


def person_spans(record: dict[str, object]) -> list[tuple[int, int]]:
    entities = record.get("entities") or []
    assert isinstance(entities, list)
    return [(int(e["start"]), int(e["end"])) for e in entities if e["type"] == "PERSON"]


def sequences(records: list[dict[str, object]], lex: Lexicon, to_simplified) -> Iterable[tuple]:  # type: ignore[no-untyped-def,type-arg]
    """(features, labels) per piece of each record, cut as the tagger cuts texts."""
    for record in records:
        text = to_simplified(fold(str(record["text"])))
        labels = labels_from_spans(len(text), person_spans(record))
        for lo, hi in pieces(text):
            piece_labels = labels[lo:hi]
            if piece_labels and piece_labels[0] == "I":
                piece_labels[0] = "B"
            yield features(text[lo:hi], lex), piece_labels


def with_replaced_names(records: list[dict[str, object]], rng: random.Random) -> list[dict[str, object]]:
    """Copies of ``records`` with every labelled name of two or more characters swapped for another.

    Mention replacement (Dai & Adel, COLING 2020): the same contexts with other names, so the model
    learns what around a name makes it one instead of remembering the names it saw.  A replacement is
    drawn from the names of the same corpus (news names into news, posts' into posts), never from the
    record's own names.  A one-character name stays: it is a surname standing for a known person
    (江 in 江主席), which only its own context makes a name; put anywhere it taught the model that a
    surname starting any word is one (陳 of 陳情人).
    """
    pools: dict[str, list[str]] = {}
    for record in records:
        text = str(record["text"])
        pools.setdefault(_corpus(record), []).extend(
            text[s:e] for s, e in person_spans(record) if e - s >= _SWAPPED_LENGTH)
    distinct_names = {corpus: set(pool) for corpus, pool in pools.items()}
    copies = []
    for record in records:
        text = str(record["text"])
        spans = sorted(person_spans(record))
        if any(b[0] < a[1] for a, b in itertools.pairwise(spans)):  # overlapping labels: kept as they are
            copies.append(record)
            continue
        pool = pools.get(_corpus(record), [])
        distinct = distinct_names.get(_corpus(record), set())
        own = {text[s:e] for s, e in spans} & distinct
        names = []
        for start, end in spans:
            name = text[start:end]
            if end - start >= _SWAPPED_LENGTH and pool:
                name = rng.choice(pool)
                while name in own and len(distinct) > len(own):  # another name is there to draw
                    name = rng.choice(pool)
            names.append(name)
        copies.append(_renamed(record, spans, names) if spans else record)
    return copies


def _renamed(record: dict[str, object], spans: list[tuple[int, int]], names: list[str]) -> dict[str, object]:
    """``record`` with the text of each of ``spans`` (sorted, apart) replaced by its name in ``names``,
    the labels moved with them."""
    text = str(record["text"])
    parts, entities, at = [], [], 0
    for (start, end), name in zip(spans, names, strict=True):
        parts.append(text[at:start])
        new_start = sum(map(len, parts))
        parts.append(name)
        entities.append({"type": "PERSON", "start": new_start, "end": new_start + len(name)})
        at = end
    parts.append(text[at:])
    return {**record, "text": "".join(parts), "entities": entities}


class NameGenerator:
    """Names no text of the training data holds, shaped like the names that it does.

    A name that starts with a surname becomes one of the ``drawn_surnames`` (by how often it starts the
    training names) with as many given-name characters, each drawn by how often it appears in given
    names (of the ``gold`` and ``silver`` records trained on) among ``given_chars`` or the characters
    of at least ``_GOLD_GIVEN_MIN`` gold given names; any other name (a transliteration, a nickname)
    becomes a string of its length from a character chain (first-order Markov) over such names of
    ``gold`` (the teacher's labels of this kind are the noisiest).  A draw that is a dictionary word
    (``words``), or whose given name is one, is drawn again: generated names teach what a name looks
    like, never that a word can be one (圖利罪).  Nothing comes from a held-out fold, so its names stay
    unseen.
    """

    def __init__(self, gold: list[dict[str, object]], silver: list[dict[str, object]],
                 surnames: frozenset[str], compound_surnames: frozenset[str],
                 to_simplified: Callable[[str], str], *, drawn_surnames: frozenset[str],
                 given_chars: frozenset[str], words: Container[str]) -> None:
        self._simplified = to_simplified
        self._surnames, self._compound = surnames, compound_surnames
        self._words = words
        surname_counts: dict[str, int] = {}
        given_counts: dict[str, int] = {}
        gold_given: dict[str, int] = {}
        self._next: dict[str, dict[str, int]] = {}
        for is_gold, record in [*((True, r) for r in gold), *((False, r) for r in silver)]:
            text = str(record["text"])
            for start, end in person_spans(record):
                name = text[start:end]
                if not all(_is_han(c) for c in name):
                    continue  # dotted, Latin and mixed names are kept as they are
                cut = self._surname_length(name)
                if cut:
                    surname_counts[name[:cut]] = surname_counts.get(name[:cut], 0) + 1
                    for c in name[cut:]:
                        given_counts[c] = given_counts.get(c, 0) + 1
                        gold_given[c] = gold_given.get(c, 0) + is_gold
                elif is_gold:
                    for a, b in itertools.pairwise("^" + name):
                        row = self._next.setdefault(a, {})
                        row[b] = row.get(b, 0) + 1
        surname_counts = {k: n for k, n in surname_counts.items() if to_simplified(k) in drawn_surnames}
        given_counts = {c: n for c, n in given_counts.items()
                        if to_simplified(c) in given_chars or gold_given[c] >= _GOLD_GIVEN_MIN}
        self._surname_choices = (list(surname_counts), list(surname_counts.values()))
        self._given_choices = (list(given_counts), list(given_counts.values()))
        self._chain = {a: (list(row), list(row.values())) for a, row in self._next.items()}

    def _surname_length(self, name: str) -> int:
        """How many of ``name``'s first characters are a surname (0: none, or nothing after it)."""
        simplified = self._simplified(name)
        if len(name) >= 3 and simplified[:2] in self._compound:
            return 2
        if len(name) in (2, 3) and simplified[0] in self._surnames:
            return 1
        return 0

    def _is_word(self, name: str, given_from: int) -> bool:
        simplified = self._simplified(name)
        given = simplified[given_from:]
        return simplified in self._words or (len(given) >= 2 and given in self._words)

    def replacing(self, name: str, rng: random.Random) -> str | None:
        """A generated name in place of ``name`` (None: ``name`` is of a kind kept as it is)."""
        if not all(_is_han(c) for c in name):
            return None
        cut = self._surname_length(name)
        for _ in range(20):  # a draw that is a word, or a walk that ends early: draw again
            drawn = self._draw(name, cut, rng)
            if drawn is None:
                return None
            if len(drawn) == len(name) and not self._is_word(drawn, cut):
                return drawn
        return None

    def _draw(self, name: str, cut: int, rng: random.Random) -> str | None:
        if cut:
            if not (self._surname_choices[0] and self._given_choices[0]):
                return None
            surname = rng.choices(*self._surname_choices)[0]
            return surname + "".join(rng.choices(*self._given_choices, k=len(name) - cut))
        if "^" not in self._chain:
            return None
        out: list[str] = []
        at = "^"
        while len(out) < len(name) and at in self._chain:
            at = rng.choices(*self._chain[at])[0]
            out.append(at)
        return "".join(out)


def _is_han(c: str) -> bool:
    return "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff"


def name_generator(gold: list[dict[str, object]], silver: list[dict[str, object]],
                   recognizer: ChinesePersonRecognizer) -> NameGenerator:
    """The generator of the training scripts: surnames of the common and compound tiers, the lexicon's
    given-name characters, jieba's dictionary as the words a generated name may not be."""
    lex = recognizer.feature_lexicon()
    drawn = frozenset(recognizer.to_simplified(s.text) for s in recognizer.surnames if s.tier != "rare")
    return NameGenerator(gold, silver, lex.surnames, lex.compound_surnames, recognizer.to_simplified,
                         drawn_surnames=drawn, given_chars=lex.given_chars, words=lex.word_freq)


def with_generated_names(records: list[dict[str, object]], generator: NameGenerator,
                         rng: random.Random) -> list[dict[str, object]]:
    """Copies of ``records`` with every Chinese name of two or more characters swapped for a generated
    one (``NameGenerator``): contexts the model saw, with names no text held."""
    copies = []
    for record in records:
        text = str(record["text"])
        spans = sorted(person_spans(record))
        if not spans or any(b[0] < a[1] for a, b in itertools.pairwise(spans)):
            copies.append(record)
            continue
        names = [(generator.replacing(text[s:e], rng) if e - s >= _SWAPPED_LENGTH else None) or text[s:e]
                 for s, e in spans]
        copies.append(_renamed(record, spans, names))
    return copies


def _corpus(record: dict[str, object]) -> str:
    """The corpus of a gold record: ``PD`` (news) or ``WB`` (posts), from its id."""
    return str(record["id"])[:2]


def in_fold(records: list[dict[str, object]], fold: int) -> list[dict[str, object]]:
    """The records of one of ``FOLDS`` folds (every ``FOLDS``-th record): held out for error analysis."""
    return [r for i, r in enumerate(records) if i % FOLDS == fold]


def score(records: list[dict[str, object]], predict) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """Precision and recall of overlapping spans, as ``shared/eval/score.py`` counts them."""
    tp = fp = gold = hit = 0
    for record in records:
        found = predict(str(record["text"]))
        truth = person_spans(record)
        gold += len(truth)
        hit += sum(any(s < te and ts < e for s, e in found) for ts, te in truth)
        for s, e in found:
            if any(s < te and ts < e for ts, te in truth):
                tp += 1
            else:
                fp += 1
    return (tp / (tp + fp) if tp + fp else 1.0), (hit / gold if gold else 1.0), gold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names-dir", type=Path, required=True)
    parser.add_argument("--silver", type=Path, action="append", default=[])
    parser.add_argument("--silver-max", type=int, default=0, help="at most this many silver records (0: all)")
    parser.add_argument("--gold-repeat", type=int, default=3,
                        help="append each gold record this many times: hand labels outweigh the teacher's")
    parser.add_argument("--replace-names", action="store_true",
                        help="every gold copy after the first swaps each name of two or more characters for"
                             " another gold name of the same corpus (mention replacement; seeded by --seed)")
    parser.add_argument("--generated-copies", type=int, default=0,
                        help="append this many more gold copies whose names are generated (names no"
                             " training text holds, shaped like those it does; seeded by --seed)")
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--metadata", type=Path, default=METADATA_PATH)
    parser.add_argument("--c1", type=float, default=0.05)
    parser.add_argument("--c2", type=float, default=0.01)
    parser.add_argument("--iterations", type=int, default=100)  # the shipped model's
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--holdout-fold", type=int, action="append", default=[], metavar="K",
                        help=f"leave gold records i with i %% {FOLDS} == K out of training and score them"
                             " too (error analysis: tools/names_errors.py groups misses by kind); repeat it"
                             " for out-of-fold CRFs (tools/train_names_net.py --crf-folds)")
    args = parser.parse_args(argv)
    if any(not 0 <= k < FOLDS for k in args.holdout_fold):
        parser.error(f"--holdout-fold: a fold is 0 to {FOLDS - 1}")
    holdout = sorted(set(args.holdout_fold))

    import pycrfsuite

    recognizer = ChinesePersonRecognizer(use_model=False)
    lex = recognizer.feature_lexicon()
    to_simplified = recognizer.to_simplified

    gold: list[dict[str, object]] = []
    held_out: dict[str, list[dict[str, object]]] = {}
    for name, prefix in TRAIN_SETS:
        records = read_records(args.names_dir / name, (prefix,))
        for k in holdout:
            held_out[f"{name}:{prefix} fold {k}"] = in_fold(records, k)
        records = [r for i, r in enumerate(records) if i % FOLDS not in holdout]
        gold += records
    silver: list[dict[str, object]] = []
    for path in args.silver:
        silver += read_records(path)
    if args.silver_max:  # a sample of the silver records, the same one for the same seed
        random.Random(args.seed).shuffle(silver)
        silver = silver[: args.silver_max]

    trainer = pycrfsuite.Trainer(verbose=False)
    n_items = 0
    if args.replace_names:
        rng = random.Random(args.seed)
        training = gold + [r for _ in range(args.gold_repeat - 1) for r in with_replaced_names(gold, rng)]
    else:
        training = gold * args.gold_repeat
    if args.generated_copies:
        generator = name_generator(gold, silver, recognizer)
        generated_rng = random.Random(args.seed + 1)
        training += [r for _ in range(args.generated_copies)
                     for r in with_generated_names(gold, generator, generated_rng)]
    for xseq, yseq in sequences(training + silver, lex, to_simplified):
        trainer.append(xseq, yseq)
        n_items += len(yseq)
    trainer.set_params({
        "c1": args.c1, "c2": args.c2, "max_iterations": args.iterations,
        "feature.possible_transitions": True, "feature.minfreq": 1,
    })
    started = time.monotonic()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    trainer.train(str(args.out))
    seconds = time.monotonic() - started
    print(f"trained on {len(gold)} gold (x{args.gold_repeat}) + {len(silver)} silver records"
          f" ({n_items} characters) in {seconds:.0f} s")

    from recognizers.name_tagger import NameTagger, TaggerWeights

    # Tagging reads the weights keyed by template (numpy), written next to the model.
    weights_path = args.out.with_suffix(".npz")
    TaggerWeights.from_crfsuite(args.out).save(weights_path)
    tagger = NameTagger(lex, weights_path)
    scores = {}
    scored = {f"{name}:{prefix}": read_records(args.names_dir / name, (prefix,)) for name, prefix in DEV_SETS}
    for key, records in {**scored, **held_out}.items():
        precision, recall, n_names = score(
            records, lambda text: [(t.start, t.end) for t in tagger.tag(to_simplified(fold(text)))]
        )
        scores[key] = {"precision": round(precision, 4), "recall": round(recall, 4),
                       "names": n_names, "records": len(records)}
        print(f"model alone on {key}: precision {precision:.3f} recall {recall:.3f} ({n_names} names)")
    metadata = {
        "model": args.out.name,
        "command": "python tools/train_names.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "kind": "linear-chain CRF over characters (python-crfsuite, L-BFGS)",
        "labels": "B/I/O for PERSON",
        "trained_on": {
            "gold": [f"{name} records {prefix}…" for name, prefix in TRAIN_SETS],
            "gold_records": len(gold),
            "silver": [p.name for p in args.silver],
            "silver_records": len(silver),
        },
        "params": {"gold_repeat": args.gold_repeat, "replace_names": args.replace_names,
                   "generated_copies": args.generated_copies,
                   "c1": args.c1, "c2": args.c2,
                   "iterations": args.iterations, "seed": args.seed,
                   # one fold: the integer (as before); several: their list
                   "holdout_fold": (holdout[0] if len(holdout) == 1 else holdout) if holdout else -1},
        "dev_scores_model_alone": scores,
        "sources": "README.md, section Names; ../shared/corpus/names/README.md",
    }
    args.metadata.write_text(json.dumps(metadata, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB), {weights_path} and {args.metadata}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
