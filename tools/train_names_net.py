#!/usr/bin/env python3
"""Train the person-name network (``recognizers/name_net.py``) in torch and export it for numpy.

Usage (from the repository root, with the ``train`` extra installed)::

    python tools/train_names_net.py --names-dir ../shared/corpus/names --silver silver20k.jsonl \
        [--holdout-fold 0] [--out recognizers/data/person_net.npz]

Gold records are the train records of ``news_tw.jsonl`` (``PDT…``) and ``social_tw.jsonl`` (``WBT…``);
``--silver`` adds teacher-labelled records (``tools/label_names_lac.py``).  With ``--holdout-fold K``
gold fold K (``train_names.py``'s folds) is left out and scored after every epoch (choosing settings);
without it the dev records (``PDD…``, ``WBD…``) are scored once, at the end.  The inputs are computed by
the run-time code (``NameTagger.net_inputs``), scores by the numpy forward pass of the exported file,
so what is printed is what ships.  Deterministic: fixed seeds, one thread, deterministic algorithms.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recognizers.name_net import CLASS_LETTERS, NET_PATH, pair_buckets
from recognizers.name_tagger import (
    BEGIN,
    INSIDE,
    WEIGHTS_PATH,
    NameTagger,
    flag_attribute_names,
    labels_from_spans,
    padded,
    pieces,
    save_npz,
)
from recognizers.person import ChinesePersonRecognizer
from recognizers.text import fold
from tools.train_names import (
    DEV_SETS,
    FOLDS,
    TRAIN_SETS,
    in_fold,
    name_generator,
    person_spans,
    read_records,
    score,
    with_generated_names,
)

FIXTURE_PATH = Path(__file__).resolve().parents[1] / "tests/recognizers/data/person_net_fixture.npz"
# Sentences of our own (no corpus text) whose torch outputs the tests compare numpy's with.
FIXTURE_TEXTS = (
    "行政院長卓榮泰今天上午會見了美國在台協會處長谷立言，雙方談到能源合作。",
    "小明跟阿華昨天去夜市，@阿華 你的錢包還在我這裡喔",
    "江主席說，克林頓下個月訪問北京；記者王小美台北報導。",
    "報案人陳志明表示，機車被偷了。",
)
_CHUNK = 400  # pieces per call of the numpy feature code


@dataclass(frozen=True, slots=True)
class Piece:
    """One training piece's inputs as arrays (as ``NetInputs`` holds them), its labels and loss weight."""

    chars: np.ndarray  # embedding rows
    pairs: np.ndarray  # pair buckets
    classes: np.ndarray
    flags: np.ndarray
    crf: np.ndarray  # the CRF's state scores
    labels: np.ndarray
    weight: float


def piece_texts(records, to_simplified, label_index):  # type: ignore[no-untyped-def]
    """(simplified piece, label ids) for each piece with a Han character, cut as the tagger cuts."""
    out = []
    for record in records:
        text = to_simplified(fold(str(record["text"])))
        labels = labels_from_spans(len(text), person_spans(record))
        for lo, hi in pieces(text):
            piece = text[lo:hi]
            if not any("\u3400" <= ch <= "\u9fff" for ch in piece):
                continue
            piece_labels = labels[lo:hi]
            if piece_labels[0] == INSIDE:
                piece_labels[0] = BEGIN
            out.append((piece, np.array([label_index[x] for x in piece_labels], dtype=np.int64)))
    return out


def inputs_of(tagger: NameTagger, texts: list[str]):  # type: ignore[no-untyped-def]
    """The run-time inputs of ``texts`` (codepoints, pairs, classes, flags, CRF scores), per text."""
    found = []
    for at in range(0, len(texts), _CHUNK):
        chunk = texts[at:at + _CHUNK]
        buffer, _first, length, rows = padded(chunk)
        inputs = tagger.net_inputs(buffer, rows, length, with_crf_scores=True)
        assert inputs.flags is not None and inputs.crf_scores is not None  # net_inputs gives both
        bounds = np.cumsum(length)[:-1]
        for codes, next_codes, classes, flags, crf in zip(
            np.split(inputs.codes, bounds), np.split(inputs.next_codes, bounds),
            np.split(inputs.classes, bounds), np.split(inputs.flags.astype(np.float32), bounds),
            np.split(inputs.crf_scores, bounds), strict=True,
        ):
            found.append((codes, next_codes, classes, flags, crf.astype(np.float32)))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names-dir", type=Path, required=True)
    parser.add_argument("--silver", type=Path, action="append", default=[])
    parser.add_argument("--gold-weight", type=float, default=3.0,
                        help="loss weight of a gold piece (silver: 1)")
    parser.add_argument("--prefix-weight", action="append", default=[], metavar="PREFIX=FACTOR",
                        help="multiply --gold-weight for gold records whose id starts with PREFIX"
                             " (WBT=3: the posts, a fifth of the gold, count as much as the news)")
    parser.add_argument("--generated-copies", type=int, default=0,
                        help="add this many copies of the gold records whose names are generated"
                             " (train_names.py's NameGenerator; a copy keeps its record's fold and weight)")
    parser.add_argument("--out", type=Path, default=NET_PATH)
    parser.add_argument("--fixture", type=Path, default=FIXTURE_PATH)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--char-dim", type=int, default=32)
    parser.add_argument("--pair-dim", type=int, default=16)
    parser.add_argument("--pair-buckets", type=int, default=50_000)
    parser.add_argument("--dilations", default="1,2,4,8")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--char-dropout", type=float, default=0.05, help="train unknown characters")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-chars", type=int, default=2000)
    parser.add_argument("--stack", action="store_true", help="read the CRF's state scores, learn corrections")
    parser.add_argument("--crf-weights", type=Path, default=WEIGHTS_PATH,
                        help="the CRF whose scores --stack reads"
                             " (with --holdout-fold: one trained without the fold)")
    parser.add_argument("--crf-folds", default="",
                        help="with --stack: CRF weights per gold fold, a path with {fold}: a gold record of"
                             " fold K reads the scores of a CRF trained without fold K (and without the"
                             " held-out fold), by the --crf-weights CRF's recipe (out-of-fold, as at run"
                             " time); each one's train_names.py metadata (.json beside it) is checked")
    parser.add_argument("--crf-transitions", action="store_true",
                        help="with --stack: start from the CRF's transitions (else zeros)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--holdout-fold", type=int, default=-1, metavar="K")
    args = parser.parse_args(argv)

    import torch
    from torch import nn

    torch.set_num_threads(1)  # the machine's other core benchmarks
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.process_time()

    recognizer = ChinesePersonRecognizer(use_model=False)
    lex = recognizer.feature_lexicon()
    to_simplified = recognizer.to_simplified
    crf = NameTagger(lex, args.crf_weights)
    if args.stack and not args.crf_folds:
        parser.error("--stack needs --crf-folds: on gold records the CRF's own scores are in-sample (near"
                     " perfect), and the network would learn its corrections from the silver labels alone")
    labels = crf.weights.labels
    label_index = {x: i for i, x in enumerate(labels)}

    gold: list[dict[str, object]] = []
    gold_folds: list[int] = []
    held_out: dict[str, list[dict[str, object]]] = {}
    for name, prefix in TRAIN_SETS:
        records = read_records(args.names_dir / name, (prefix,))
        if args.holdout_fold >= 0:
            held_out[f"{name}:{prefix} fold {args.holdout_fold}"] = in_fold(records, args.holdout_fold)
        kept = [i for i in range(len(records)) if i % FOLDS != args.holdout_fold]
        gold += [records[i] for i in kept]
        gold_folds += [i % FOLDS for i in kept]
    silver: list[dict[str, object]] = []
    for path in args.silver:
        silver += read_records(path)
    if args.generated_copies:  # contexts of gold records with names no text holds; same folds
        generator = name_generator(gold, silver, recognizer)
        generated_rng = random.Random(args.seed + 1)
        originals, original_folds = list(gold), list(gold_folds)
        for _ in range(args.generated_copies):
            gold += with_generated_names(originals, generator, generated_rng)
            gold_folds += original_folds

    factors = {prefix: float(factor) for prefix, factor in (w.split("=", 1) for w in args.prefix_weight)}
    texts = [(t, y, args.gold_weight * factor)
             for record in gold
             for factor in [next((f for p, f in factors.items() if str(record["id"]).startswith(p)), 1.0)]
             for t, y in piece_texts([record], to_simplified, label_index)]
    texts += [(t, y, 1.0) for t, y in piece_texts(silver, to_simplified, label_index)]
    features = inputs_of(crf, [t for t, _, _ in texts])
    if args.crf_folds:  # gold pieces: the CRF scores of the CRF that did not train on their fold
        fold_of_piece = [k for record, k in zip(gold, gold_folds, strict=True)
                         for _ in piece_texts([record], to_simplified, label_index)]
        for k in sorted(set(fold_of_piece)):
            at = [i for i, f in enumerate(fold_of_piece) if f == k]
            fold_path = Path(args.crf_folds.format(fold=k))
            check_out_of_fold(fold_path, args.crf_weights, {k} | ({args.holdout_fold} - {-1}))
            fold_crf = NameTagger(lex, fold_path)
            for i, found in zip(at, inputs_of(fold_crf, [texts[i][0] for i in at]), strict=True):
                features[i] = (*features[i][:4], found[4])
    counts: dict[int, int] = {}
    for codes, *_ in features:
        for c in codes.tolist():
            counts[c] = counts.get(c, 0) + 1
    char_codes = np.array(sorted(c for c, k in counts.items() if k >= 2), dtype=np.int64)

    def char_rows(codes: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(char_codes, codes), len(char_codes) - 1)
        return np.where(char_codes[at] == codes, at + 1, 0)

    data = [
        Piece(char_rows(codes), pair_buckets(codes, next_codes, args.pair_buckets), classes, flags,
              crf_scores, y, w)
        for (codes, next_codes, classes, flags, crf_scores), (_, y, w) in zip(features, texts, strict=True)
    ]
    n_chars = sum(len(p.labels) for p in data)
    print(f"{len(gold)} gold + {len(silver)} silver records: {len(data)} pieces, {n_chars} characters,"
          f" alphabet {len(char_codes)}; inputs in {time.process_time() - started:.0f} s CPU", flush=True)

    n_flags = len(flag_attribute_names())
    dilations = [int(d) for d in args.dilations.split(",")]
    n_in = args.char_dim + args.pair_dim + len(CLASS_LETTERS) + n_flags + (3 if args.stack else 0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.char = nn.Embedding(len(char_codes) + 1, args.char_dim)
            self.pair = nn.Embedding(args.pair_buckets, args.pair_dim)
            self.inp = nn.Linear(n_in, args.hidden)
            self.convs = nn.ModuleList(
                nn.Conv1d(args.hidden, args.hidden, 3, dilation=d, padding=d) for d in dilations)
            self.out = nn.Linear(args.hidden, 3)
            start = crf.weights.transitions if args.stack and args.crf_transitions else np.zeros((3, 3))
            self.transitions = nn.Parameter(torch.tensor(start, dtype=torch.float32))
            self.drop = nn.Dropout(args.dropout)

        def forward(self, chars, pairs, classes, flags, crf_scores, mask):  # type: ignore[no-untyped-def]
            one_hot = nn.functional.one_hot(classes, len(CLASS_LETTERS)).float()
            parts = [self.char(chars), self.pair(pairs), one_hot, flags]
            if args.stack:
                parts.append(crf_scores)
            m = mask.unsqueeze(2).float()
            h = torch.relu(self.inp(self.drop(torch.cat(parts, dim=2)))) * m
            h = h.transpose(1, 2)
            mt = m.transpose(1, 2)
            for conv in self.convs:
                h = h + self.drop(torch.relu(conv(h))) * mt
            e = self.out(h.transpose(1, 2))
            return e + crf_scores if args.stack else e

    def nll(e, tags, mask, transitions):  # type: ignore[no-untyped-def]
        """The linear-chain CRF's negative log-likelihood per sequence (no start/end scores, as crfsuite)."""
        mf = mask.float()
        gold_score = (e.gather(2, tags.unsqueeze(2)).squeeze(2) * mf).sum(1)
        gold_score = gold_score + (transitions[tags[:, :-1], tags[:, 1:]] * mf[:, 1:]).sum(1)
        alpha = e[:, 0]
        for t in range(1, e.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions.unsqueeze(0), dim=1) + e[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha, dim=1) - gold_score

    def tensors(batch: list[Piece], train: bool):  # type: ignore[no-untyped-def]
        width = max(len(p.labels) for p in batch)
        size = (len(batch), width)
        chars = np.zeros(size, dtype=np.int64)
        pairs = np.zeros(size, dtype=np.int64)
        classes = np.zeros(size, dtype=np.int64)
        tags = np.zeros(size, dtype=np.int64)
        mask = np.zeros(size, dtype=bool)
        flags = np.zeros((*size, n_flags), dtype=np.float32)
        crf_scores = np.zeros((*size, 3), dtype=np.float32)
        for i, p in enumerate(batch):
            n = len(p.labels)
            chars[i, :n], pairs[i, :n], classes[i, :n], tags[i, :n] = p.chars, p.pairs, p.classes, p.labels
            flags[i, :n], crf_scores[i, :n], mask[i, :n] = p.flags, p.crf, True
        if train and args.char_dropout:
            chars[rng.random(size) < args.char_dropout] = 0
        weights = np.array([p.weight for p in batch], dtype=np.float32)
        return [torch.from_numpy(a) for a in (chars, pairs, classes, flags, crf_scores, mask, tags, weights)]

    order = sorted(range(len(data)), key=lambda i: (len(data[i].labels), i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * len(data[i].labels) > args.batch_chars:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)

    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    total_steps = args.epochs * len(batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / max(1, total_steps))

    def export(path: Path) -> None:
        state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
        arrays: dict[str, np.ndarray] = {
            "labels": np.array(labels), "transitions": state["transitions"].astype(np.float64),
            "char_codes": char_codes, "char_embedding": state["char.weight"],
            "pair_embedding": state["pair.weight"],
            "input_weight": state["inp.weight"].T, "input_bias": state["inp.bias"],
            "dilations": np.array(dilations, dtype=np.int64),
            "output_weight": state["out.weight"].T, "output_bias": state["out.bias"],
            "stacks_on_crf": np.array(args.stack), "n_flags": np.array(n_flags, dtype=np.int64),
        }
        for i in range(len(dilations)):
            w = state[f"convs.{i}.weight"]  # (out, in, kernel) -> (kernel * in, out)
            arrays[f"conv_weight_{i}"] = w.transpose(2, 1, 0).reshape(-1, w.shape[0])
            arrays[f"conv_bias_{i}"] = state[f"convs.{i}.bias"]
        save_npz(path, arrays)

    def evaluate(sets: dict[str, list[dict[str, object]]], path: Path) -> dict[str, dict[str, float]]:
        tagger = NameTagger(lex, args.crf_weights, path)
        found = {}
        for key, records in sets.items():
            precision, recall, n_names = score(
                records, lambda text: [(t.start, t.end) for t in tagger.tag(to_simplified(fold(text)))])
            found[key] = {"precision": round(precision, 4), "recall": round(recall, 4), "names": n_names}
            print(f"  model alone on {key}: precision {precision:.3f} recall {recall:.3f} ({n_names} names)",
                  flush=True)
        return found

    args.out.parent.mkdir(parents=True, exist_ok=True)
    scores: dict[str, dict[str, float]] = {}
    for epoch in range(args.epochs):
        net.train()
        total = 0.0
        for b in rng.permutation(len(batches)).tolist():
            chars, pairs, classes, flags, crf_scores, mask, tags, weights = tensors(
                [data[i] for i in batches[b]], train=True)
            e = net(chars, pairs, classes, flags, crf_scores, mask)
            loss = (nll(e, tags, mask, net.transitions) * weights).sum() / mask.sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * float(mask.sum())
        net.eval()
        print(f"epoch {epoch + 1}: loss {total / n_chars:.4f}, {time.process_time() - started:.0f} s CPU",
              flush=True)
        if held_out:
            export(args.out)
            scores = evaluate(held_out, args.out)
    export(args.out)
    if not held_out:
        dev = {f"{name}:{prefix}": read_records(args.names_dir / name, (prefix,))
               for name, prefix in DEV_SETS}
        scores = evaluate(dev, args.out)
    write_fixture(net, args, crf, labels, char_rows, to_simplified)
    metadata = {
        "model": args.out.name,
        "command": "python tools/train_names_net.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "kind": "dilated CNN over characters + CRF transitions (torch training, numpy tagging)",
        "labels": "B/I/O for PERSON",
        "trained_on": {"gold_records": len(gold), "silver": [p.name for p in args.silver],
                       "silver_records": len(silver), "pieces": len(data), "characters": n_chars},
        "params": {k: (v.name if isinstance(v, Path) else v) for k, v in vars(args).items()
                   if k not in ("names_dir", "out", "fixture", "silver", "crf_folds")},
        "scores_model_alone": scores,
        "cpu_seconds": round(time.process_time() - started),
    }
    args.out.with_suffix(".json").write_text(json.dumps(metadata, ensure_ascii=False, indent=2) + "\n",
                                              encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)"
          f" in {time.process_time() - started:.0f} s CPU")
    return 0


def check_out_of_fold(fold_path: Path, base_path: Path, folds: set[int]) -> None:
    """Refuse a fold CRF that saw one of ``folds`` or was not trained as the base CRF was.

    Both were written by ``train_names.py``, whose metadata (``.json`` beside the weights) records the
    held-out folds and the training settings; only the held-out folds may differ.
    """
    def metadata(path: Path) -> dict[str, object]:
        json_path = path.with_suffix(".json")
        if not json_path.is_file():
            raise SystemExit(f"{json_path}: missing (train_names.py writes it with --metadata)")
        data: dict[str, object] = json.loads(json_path.read_text(encoding="utf-8"))
        return data

    fold_meta, base_meta = metadata(fold_path), metadata(base_path)
    held = fold_meta["params"]["holdout_fold"]  # type: ignore[index]
    held_out = set(held) if isinstance(held, list) else {held} - {-1}
    if not folds <= held_out:
        raise SystemExit(f"{fold_path}: trained on gold fold(s) {sorted(folds - held_out)}"
                         f" (held out {sorted(held_out)}, needs {sorted(folds)})")

    def recipe(data: dict[str, object]) -> tuple[object, ...]:
        params = {k: v for k, v in data["params"].items() if k != "holdout_fold"}  # type: ignore[attr-defined]
        trained = data["trained_on"]
        silver = [str(name).split(":")[0] for name in trained["silver"]]  # type: ignore[index]
        return (params, silver, trained["silver_records"])  # type: ignore[index]

    if recipe(fold_meta) != recipe(base_meta):
        raise SystemExit(f"{fold_path}: not the recipe of {base_path}:"
                         f" {recipe(fold_meta)} != {recipe(base_meta)}")


def write_fixture(net, args, crf: NameTagger, labels, char_rows, to_simplified) -> None:  # type: ignore[no-untyped-def]
    """Torch's state scores and Viterbi labels for ``FIXTURE_TEXTS``: what numpy must reproduce."""
    import torch

    texts = [to_simplified(t) for t in FIXTURE_TEXTS]
    emissions, best = [], []
    with torch.no_grad():
        for codes, next_codes, classes, flags, crf_scores in inputs_of(crf, texts):
            batch = [torch.from_numpy(a)[None] for a in (
                char_rows(codes), pair_buckets(codes, next_codes, args.pair_buckets), classes, flags,
                crf_scores)]
            e = net(*batch, torch.ones((1, len(codes)), dtype=torch.bool))[0].double()
            emissions.append(e.numpy())
            best.append(torch_viterbi(e, net.transitions.detach().double()))
    args.fixture.parent.mkdir(parents=True, exist_ok=True)
    save_npz(args.fixture, {
        "texts": np.array(texts), "labels": np.array(labels),
        "emissions": np.concatenate(emissions), "best": np.concatenate(best),
        "lengths": np.array([len(t) for t in texts], dtype=np.int64),
    })


def torch_viterbi(e, transitions) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The best label sequence of one sequence's state scores (torch, for the fixture)."""
    score = e[0]
    back = []
    for t in range(1, e.shape[0]):
        candidates = score.unsqueeze(1) + transitions
        back.append(candidates.argmax(0))
        score = candidates.max(0).values + e[t]
    label = int(score.argmax())
    path = [label]
    for pointers in reversed(back):
        label = int(pointers[label])
        path.append(label)
    return np.array(path[::-1], dtype=np.int8)


if __name__ == "__main__":
    raise SystemExit(main())
