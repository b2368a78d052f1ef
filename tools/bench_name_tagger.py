"""Benchmark the name tagger: crfsuite (feature strings) against numpy, and the engine, side by side.

``python tools/bench_name_tagger.py [--jsonl FILE] [--repeat N] [--net NET.npz]`` joins texts (default: the
project's
own ``guard/data/sample_corpus.jsonl``; any JSONL with a ``text`` field, e.g. unlabelled news prose)
into prompts of about 40 characters, 1 KB, 20 KB and 200 KB of UTF-8, and prints for each: CPU
milliseconds of the crfsuite tagger (as it ran before: ``features()`` strings, ``pycrfsuite``; skipped
when python-crfsuite is not installed), of the numpy tagger, and of the whole engine
(``Engine.inspect``, every recognizer) per byte.  Both taggers must return the same names.

``--against CHECKOUT`` adds another checkout's tagger (say a detached worktree of ``main``): its
``recognizers/name_tagger.py`` and ``recognizers/crf_inference.py`` loaded beside this tree's, on
the same lexicon, timed in this process taking turns with this tree's (``--rounds``, fastest
round each) and checked to give the same names and the same probabilities, bit for bit.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guard.sample_corpus import SAMPLE_CORPUS
from recognizers.name_tagger import MODEL_PATH, NameTagger, TaggedName, crfsuite_names

SIZES = (40, 1_000, 20_000, 200_000)  # UTF-8 bytes (about a third as many Chinese characters)


def _prompt(texts: list[str], size: int) -> str:
    joined = ""
    i = 0
    while len(joined.encode("utf-8")) < size:
        joined += texts[i % len(texts)] + "\n"
        i += 1
    while len(joined.encode("utf-8")) > size and len(joined) > 1:
        joined = joined[:-1]
    return joined


def _crfsuite_tagger(tagger: NameTagger) -> Callable[[str], list[TaggedName]] | None:
    try:
        import pycrfsuite
    except ImportError:
        return None
    crf = pycrfsuite.Tagger()
    crf.open(str(MODEL_PATH))

    def tag(simplified: str) -> list[TaggedName]:
        return crfsuite_names(crf, simplified, tagger.lex)

    return tag


def _cpu_ms(run: Callable[[], Any], repeat: int) -> float:
    run()  # warm caches
    started = time.process_time()
    for _ in range(repeat):
        run()
    return (time.process_time() - started) * 1000 / repeat


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _checkout_tagger(checkout: Path, tagger: NameTagger) -> NameTagger:
    """``checkout``'s NameTagger class and decoders, on ``tagger``'s lexicon (shared modules: this tree's)."""
    decoders = _module("against_crf_inference", checkout / "recognizers" / "crf_inference.py")
    module = _module("against_name_tagger", checkout / "recognizers" / "name_tagger.py")
    for name in dir(decoders):  # what it imported from this tree's crf_inference: its own tree's
        if not name.startswith("__") and hasattr(module, name):
            setattr(module, name, getattr(decoders, name))
    other: NameTagger = module.NameTagger(tagger.lex)
    return other


def _same_names(a: list[TaggedName], b: list[TaggedName]) -> bool:
    return [(n.start, n.end, n.probability) for n in a] == [(n.start, n.end, n.probability) for n in b]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jsonl", type=Path, default=SAMPLE_CORPUS)
    parser.add_argument("--repeat", type=int, default=20, help="runs of the 40-byte and 1 KB prompts")
    parser.add_argument("--net", type=Path, default=None,
                        help="also time the tagger with this network (tools/train_names_net.py's .npz)")
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout whose tagger is timed beside this one (same names required)")
    parser.add_argument("--rounds", type=int, default=3, help="turns of this tree's and --against's tagger")
    args = parser.parse_args(argv)
    for name in ("jieba", "presidio-analyzer"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from guard.engine import Engine
    from guard.policy import load_policy
    from recognizers.person import ChinesePersonRecognizer

    with args.jsonl.open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    recognizer = ChinesePersonRecognizer(use_model=False)
    numpy_tagger = NameTagger(recognizer.feature_lexicon())
    crfsuite_tag = _crfsuite_tagger(numpy_tagger)
    net_tagger = NameTagger(recognizer.feature_lexicon(), net_path=args.net) if args.net else None
    against = _checkout_tagger(args.against, numpy_tagger) if args.against else None
    engine = Engine(load_policy(None))
    engine.warm_up()

    print(f"texts: {args.jsonl}")
    print(f"{'prompt':>22} {'crfsuite ms':>12} {'numpy ms':>10} {'speed-up':>9} {'engine ms':>10}"
          f" {'engine us/byte':>15}" + (f" {'with network ms':>16}" if net_tagger else "")
          + (f" {'--against ms':>13} {'this tree ms':>13}" if against else ""))
    for size in SIZES:
        prompt = _prompt(texts, size)
        n_bytes = len(prompt.encode("utf-8"))
        simplified = recognizer.to_simplified(prompt)
        repeat = args.repeat if size <= 1_000 else max(2, args.repeat // 10) if size <= 20_000 else 1
        numpy_ms = _cpu_ms(lambda s=simplified: numpy_tagger.tag(s), repeat)  # type: ignore[misc]
        if crfsuite_tag is not None:
            mine = [(n.start, n.end) for n in numpy_tagger.tag(simplified)]
            if mine != [(n.start, n.end) for n in crfsuite_tag(simplified)]:
                print(f"  {size} bytes: the taggers disagree", file=sys.stderr)
                return 1
            crfsuite_ms = _cpu_ms(lambda s=simplified: crfsuite_tag(s), repeat)  # type: ignore[misc]
            crfsuite_text, ratio = f"{crfsuite_ms:.2f}", f"{crfsuite_ms / numpy_ms:.1f}x"
        else:
            crfsuite_text, ratio = "-", "-"
        engine_ms = _cpu_ms(lambda p=prompt: engine.inspect(p), repeat)  # type: ignore[misc]
        label = f"{len(prompt):,} chars/{n_bytes:,} B"
        net_text = ""
        if net_tagger is not None:
            net_text = f" {_cpu_ms(lambda s=simplified: net_tagger.tag(s), repeat):>16.2f}"  # type: ignore[misc]
        against_text = ""
        if against is not None:
            if not _same_names(against.tag(simplified), numpy_tagger.tag(simplified)):
                print(f"  {size} bytes: --against's tagger finds other names or scores", file=sys.stderr)
                return 1
            turns = {against: float("inf"), numpy_tagger: float("inf")}
            for _ in range(args.rounds):
                for tagger in turns:
                    run = lambda s=simplified, t=tagger: t.tag(s)  # noqa: E731
                    turns[tagger] = min(turns[tagger], _cpu_ms(run, repeat))
            against_text = f" {turns[against]:>13.3f} {turns[numpy_tagger]:>13.3f}"
        print(f"{label:>22} {crfsuite_text:>12} {numpy_ms:>10.2f} {ratio:>9} {engine_ms:>10.2f}"
              f" {engine_ms * 1000 / n_bytes:>15.2f}{net_text}{against_text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
