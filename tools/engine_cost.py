"""What the engine costs in CPU: per prompt on the sample corpus, per byte at 1 KB, 20 KB and 200 KB.

``python tools/engine_cost.py [--against PYTHON [--rounds N]] [--profile N]`` measures CPU time
(``process_time``, not wall time: the machine is shared; the fastest of several runs) of
``Engine.inspect`` on the sample corpus's prompts one by one, on prompts of 1 KB, 20 KB and 200 KB
of UTF-8 made of corpus texts, and on a 1 KB request in four messages (cut at line breaks: what the
proxy inspects is several messages and request pieces). With ``--against`` the same measurement
runs in a child process under another interpreter (say main's venv, which imports main's tree) and
the two are printed side by side, one run; ``--rounds N`` measures both sides N times, taking
turns, and keeps each number's fastest round (a shared machine's load changes within minutes).
``--profile N`` prints the top N functions of a cProfile of the corpus pass (cumulative time) for
each side.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import logging
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZES = (1_000, 20_000, 200_000)  # UTF-8 bytes (about a third as many Chinese characters)
SEGMENTS = 4


def _prompt(texts: list[str], size: int) -> str:
    """Corpus texts joined by line breaks, cut to ``size`` bytes of UTF-8."""
    parts: list[str] = []
    total = 0
    i = 0
    while total < size:
        parts.append(texts[i % len(texts)])
        total += len(parts[-1].encode("utf-8")) + 1
        i += 1
    joined = "\n".join(parts)
    return joined.encode("utf-8")[:size].decode("utf-8", errors="ignore")


def _messages(prompt: str, count: int) -> list[str]:
    """``prompt`` cut into ``count`` messages at the line breaks nearest to equal parts."""
    cuts = [0]
    for i in range(1, count):
        at = prompt.find("\n", i * len(prompt) // count)
        cuts.append(at + 1 if at > cuts[-1] else cuts[-1])
    cuts.append(len(prompt))
    return [prompt[a:b] for a, b in itertools.pairwise(cuts) if a < b]


def _cpu_ms(run: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` runs: other processes on a shared machine only ever add time."""
    run()  # warm caches
    fastest = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        fastest = min(fastest, time.process_time() - started)
    return fastest * 1000


def measure(corpus: Path, repeat: int, profile: int) -> dict[str, Any]:
    """This interpreter's numbers, as a JSON-able dict."""
    for name in ("jieba", "presidio-analyzer"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from guard.engine import Engine
    from guard.policy import load_policy

    with corpus.open(encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    engine = Engine(load_policy(None))
    engine.warm_up()

    def corpus_pass() -> None:
        for text in texts:
            engine.inspect(text)

    numbers: dict[str, Any] = {"corpus_ms_per_prompt": _cpu_ms(corpus_pass, repeat) / len(texts)}
    for size in SIZES:
        prompt = _prompt(texts, size)
        # At least three timed runs: one 200 KB run moves by +-15 % on its own (it read a change of
        # 484 -> 549 ms that three runs in one process each did not show: 477 against 463 ms).
        runs = max(3, repeat * 20 // (size // 1_000))
        ms = _cpu_ms(lambda p=prompt: engine.inspect(p), runs)  # type: ignore[misc]
        numbers[f"{size}"] = {"ms": ms, "us_per_byte": ms * 1000 / len(prompt.encode("utf-8"))}
    prompt = _prompt(texts, 1_000)
    segments = _messages(prompt, SEGMENTS)
    ms = _cpu_ms(lambda: engine.inspect_segments(segments), repeat * 20)
    numbers["1000x4"] = {"ms": ms, "us_per_byte": ms * 1000 / len(prompt.encode("utf-8"))}
    if profile:
        profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
        profiler.enable()
        corpus_pass()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(profile)
        numbers["profile"] = out.getvalue()
    return numbers


def _table(sides: dict[str, dict[str, Any]]) -> str:
    names = list(sides)
    rows = [("corpus prompt (ms CPU)", [f"{s['corpus_ms_per_prompt']:.3f}" for s in sides.values()])]
    labels = [*((str(s), f"{s // 1000} KB") for s in SIZES), ("1000x4", f"1 KB in {SEGMENTS} messages")]
    for key, label in labels:
        rows.append((f"{label} (ms CPU, us/byte)",
                     [f"{s[key]['ms']:.2f}, {s[key]['us_per_byte']:.3f}" for s in sides.values()]))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':{width}}" + "".join(f"  {n:>24}" for n in names)]
    lines += [f"{label:{width}}" + "".join(f"  {v:>24}" for v in values) for label, values in rows]
    return "\n".join(lines)


def _fastest(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Per measurement, the round with less CPU time (a profile is kept from the round that made one)."""
    merged = dict(old)
    merged["corpus_ms_per_prompt"] = min(old["corpus_ms_per_prompt"], new["corpus_ms_per_prompt"])
    for key in [*(str(s) for s in SIZES), "1000x4"]:
        merged[key] = min(old[key], new[key], key=lambda m: m["ms"])
    return merged


def main(argv: list[str] | None = None) -> int:
    from guard.sample_corpus import SAMPLE_CORPUS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jsonl", type=Path, default=SAMPLE_CORPUS, help="texts (a JSONL text field)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="print the top N of a cProfile")
    parser.add_argument("--against", help="another interpreter to measure side by side (e.g. main's venv)")
    parser.add_argument("--json", action="store_true", help="print this side's numbers as JSON")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --against: measure both sides this many times, taking turns")
    args = parser.parse_args(argv)
    if args.json or not args.against:
        numbers = measure(args.jsonl, args.repeat, args.profile)
        if args.json:
            print(json.dumps(numbers))
            return 0
        print(_table({sys.executable: numbers}))
        print(numbers.get("profile", ""))
        return 0
    sides: dict[str, dict[str, Any]] = {}
    pair = [("against", args.against), ("this", sys.executable)]
    for round_ in range(args.rounds):
        # The sides take turns, first one then the other first: a load that comes or goes during the
        # run weighs on both, and each number is the fastest of all rounds.
        for label, python in pair if round_ % 2 == 0 else pair[::-1]:
            profile = args.profile if round_ == 0 else 0
            command = [python, __file__, "--json", "--jsonl", str(args.jsonl), "--repeat", str(args.repeat),
                       "--profile", str(profile)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"engine_cost: {python} failed:\n{done.stderr}", file=sys.stderr)
                return 1
            numbers = json.loads(done.stdout.strip().splitlines()[-1])
            name = f"{label} ({Path(python).parents[2].name})"
            sides[name] = _fastest(sides[name], numbers) if name in sides else numbers
    print(_table(sides))
    for name, numbers in sides.items():
        if "profile" in numbers:
            print(f"\n=== cProfile, {name}\n{numbers['profile']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
