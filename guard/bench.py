"""``guard bench``: the detection engine against stock Presidio, side by side in one run.

Each side runs in its own fresh process, so that start-up time and peak memory belong to that side
alone: the stock side is Presidio's predefined recognizers with no NLP model (regex only, the
fastest stock configuration that needs no download); the guard side is the engine with the policy.
Both read the same corpus and the same synthetic prompts of about 200, 2,000 and 50,000 characters.
Throughput is given per wall-clock second and per CPU second of the side's process: on a shared
machine other processes stretch the first, hardly the second.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guard.sample_corpus import SAMPLE_CORPUS

DEFAULT_CORPUS = SAMPLE_CORPUS  # the project's own synthetic corpus, shipped in the package
SIZES = (200, 2_000, 50_000)
LAUNCH_ENV = "GUARD_BENCH_LAUNCHED_AT"


def load_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def prompt_of_size(texts: list[str], size: int) -> str:
    """Deterministic prompt of at least ``size`` characters made of corpus texts, cut at ``size``."""
    parts: list[str] = []
    total = 0
    i = 0
    while total < size:
        parts.append(texts[i % len(texts)])
        total += len(parts[-1]) + 1
        i += 1
    return "\n".join(parts)[:size]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stock_presidio() -> Callable[[str], object]:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    from recognizers.analyzer import make_tldextract_offline
    from recognizers.nlp import NoModelNlpEngine

    make_tldextract_offline()
    nlp = NoModelNlpEngine(languages=["en"])
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    # Recognizers that read NLP-model entities find nothing without a model: leave them out.
    registry.recognizers = [r for r in registry.recognizers if "Spacy" not in type(r).__name__
                            and "Stanza" not in type(r).__name__ and "Transformers" not in type(r).__name__]
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    return lambda text: analyzer.analyze(text=text, language="en")


def _guard_engine(policy: str | None) -> Callable[[str], object]:
    from guard.engine import Engine
    from guard.policy import load_policy

    engine = Engine(load_policy(policy))
    engine.warm_up()
    return engine.inspect


def run_side(side: str, corpus: Path, policy: str | None, repeat: int) -> dict[str, Any]:
    """Measure one side in this process and return its numbers."""
    import logging

    for name in ("presidio-analyzer", "jieba", "tldextract"):
        logging.getLogger(name).setLevel(logging.ERROR)
    launched = float(os.environ.get(LAUNCH_ENV, time.time()))
    scan = _guard_engine(policy) if side == "guard" else _stock_presidio()
    scan("warm-up 0912-345-678")
    ready = time.time() - launched

    texts = load_texts(corpus)
    chars = sum(map(len, texts))
    for text in texts:  # untimed: what each side loads on first use (phone metadata, jieba's cache) is
        scan(text)      # start-up, not throughput; stock Presidio's first pass is ~40% slower than the next
    passes = 3
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(passes):
        for text in texts:
            scan(text)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start

    latency: dict[str, dict[str, float]] = {}
    for size in SIZES:
        prompt = prompt_of_size(texts, size)
        runs = repeat if size <= 2_000 else max(10, repeat // 10)
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            scan(prompt)
            samples.append((time.perf_counter() - t) * 1000)
        latency[str(size)] = {"p50_ms": statistics.median(samples), "p99_ms": _percentile(samples, 0.99),
                              "runs": runs}
    return {
        "side": side,
        "ready_s": ready,
        "chars_per_s": chars * passes / elapsed,
        "chars_per_cpu_s": chars * passes / cpu,
        "prompts_per_s": len(texts) * passes / elapsed,
        "latency": latency,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_bench(args: argparse.Namespace) -> int:
    corpus = Path(args.corpus) if args.corpus else DEFAULT_CORPUS
    if not corpus.is_file():
        print(f"guard bench: no corpus at {corpus} (pass --corpus FILE)", file=sys.stderr)
        return 1
    if args.side:  # child process: measure one side, print JSON
        print(json.dumps(run_side(args.side, corpus, args.policy, args.repeat)))
        return 0
    results = {}
    for side in ("presidio", "guard"):
        command = [sys.executable, "-m", "guard.cli", "bench", "--side", side, "--corpus", str(corpus),
                   "--repeat", str(args.repeat)] + (["--policy", args.policy] if args.policy else [])
        env = {**os.environ, LAUNCH_ENV: repr(time.time())}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"guard bench: the {side} side failed:\n{done.stderr}", file=sys.stderr)
            return 1
        results[side] = json.loads(done.stdout.strip().splitlines()[-1])
    print(format_table(results, corpus))
    return 0


def format_table(results: dict[str, dict[str, Any]], corpus: Path) -> str:
    stock, guard = results["presidio"], results["guard"]
    rows = [
        ("throughput on corpus (chars/s)", f"{stock['chars_per_s']:,.0f}", f"{guard['chars_per_s']:,.0f}"),
        ("throughput on corpus (chars/CPU s)",
         f"{stock['chars_per_cpu_s']:,.0f}", f"{guard['chars_per_cpu_s']:,.0f}"),
        ("throughput on corpus (prompts/s)",
         f"{stock['prompts_per_s']:,.1f}", f"{guard['prompts_per_s']:,.1f}"),
    ]
    for size in SIZES:
        s, g = stock["latency"][str(size)], guard["latency"][str(size)]
        rows.append((f"latency {size:,} chars p50 / p99 (ms)",
                     f"{s['p50_ms']:.2f} / {s['p99_ms']:.2f}", f"{g['p50_ms']:.2f} / {g['p99_ms']:.2f}"))
    rows.append(("time until ready (s)", f"{stock['ready_s']:.2f}", f"{guard['ready_s']:.2f}"))
    rows.append(("peak RSS (MB)", f"{stock['peak_rss_mb']:.0f}", f"{guard['peak_rss_mb']:.0f}"))
    width = max(len(r[0]) for r in rows)
    lines = [f"corpus: {corpus}",
             f"{'':{width}}  {'stock Presidio (regex)':>24}  {'guard (all + names)':>22}"]
    lines += [f"{name:{width}}  {a:>24}  {b:>22}" for name, a, b in rows]
    ratio = guard["chars_per_s"] / stock["chars_per_s"]
    cpu_ratio = guard["chars_per_cpu_s"] / stock["chars_per_cpu_s"]
    lines.append(f"guard throughput is {ratio:.2f}x stock Presidio's ({cpu_ratio:.2f}x per CPU second)")
    return "\n".join(lines)
