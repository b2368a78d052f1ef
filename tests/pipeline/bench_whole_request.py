"""Benchmark: engine CPU time of typical client requests, the format's selection alone vs the whole request.

Run ``.venv/bin/python -m tests.pipeline.bench_whole_request [--against PYTHON]``: prints a side-by-side
table, asserts nothing. CPU time (``process_time``, fastest of three rounds), not wall time: the machine
is shared. With ``--against`` the same requests are measured in a child process under another
interpreter (say main's venv, which imports main's tree) and printed beside this tree's numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from guard import pipeline
from guard.engine import Engine
from guard.formats import format_for
from guard.policy import load_policy

TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "查詢天氣預報",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["台北", "高雄"]}}}}}
BODY = json.dumps({"model": "gpt-4o-mini", "temperature": 0.2, "stream": False, "tools": [TOOL], "messages": [
    {"role": "system", "content": "你是機關的公文助理，回答請用繁體中文。"},
    {"role": "user", "content": "請用三句話介紹台灣的夜市文化。"}]}, ensure_ascii=False).encode()
# What openai-python 1.x sends.
HEADERS = (
    ("host", "api.openai.com"), ("content-type", "application/json"), ("accept", "application/json"),
    ("user-agent", "OpenAI/Python 1.52.0"), ("x-stainless-lang", "python"),
    ("x-stainless-package-version", "1.52.0"), ("x-stainless-os", "MacOS"), ("x-stainless-arch", "arm64"),
    ("x-stainless-runtime", "CPython"), ("x-stainless-runtime-version", "3.11.7"),
    ("x-stainless-retry-count", "0"), ("authorization", "Bearer sk-test"),
    ("accept-encoding", "gzip, deflate"), ("content-length", str(len(BODY))),
)
ANTHROPIC_BODY = json.dumps({"model": "claude-3-5-sonnet-latest", "max_tokens": 1024, "messages": [
    {"role": "user", "content": "請用三句話介紹台灣的夜市文化。"}]}, ensure_ascii=False).encode()
ANTHROPIC_HEADERS = (
    ("host", "api.anthropic.com"), ("content-type", "application/json"), ("accept", "application/json"),
    ("anthropic-version", "2023-06-01"), ("user-agent", "Anthropic/Python 0.40.0"),
    ("x-stainless-lang", "python"), ("x-stainless-package-version", "0.40.0"), ("x-stainless-os", "Linux"),
    ("x-stainless-arch", "x64"), ("x-stainless-runtime", "CPython"),
    ("x-stainless-runtime-version", "3.11.2"),
    ("x-stainless-retry-count", "0"), ("x-stainless-timeout", "600"), ("x-api-key", "sk-ant-test"),
)
CHROMIUM_HEADERS = (
    ("host", "chatgpt.com"), ("sec-ch-ua", '"Chromium";v="131", "Not_A Brand";v="24"'),
    ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", '"Linux"'), ("accept", "*/*"),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/131.0.0.0 Safari/537.36"),
    ("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "cors"), ("accept-language", "zh-TW,zh;q=0.9"),
    ("priority", "u=1, i"),
)
REQUESTS = {
    "openai-python chat": pipeline.Request(
        "POST", "/v1/chat/completions", HEADERS, BODY, "api.openai.com", 443, ("api.openai.com", 443),
        "api.openai.com"),
    "anthropic-python messages": pipeline.Request(
        "POST", "/v1/messages", ANTHROPIC_HEADERS, ANTHROPIC_BODY, "api.anthropic.com", 443,
        ("api.anthropic.com", 443), "api.anthropic.com"),
    "chromium GET (ChatGPT list)": pipeline.Request(
        "GET", "/backend-api/conversations?offset=0&limit=28&order=updated", CHROMIUM_HEADERS, b"",
        "chatgpt.com", 443, ("chatgpt.com", 443), "chatgpt.com"),
}


def cpu_ms(work: Callable[[], object], runs: int, rounds: int = 3) -> float:
    """CPU milliseconds per call, the fastest of ``rounds`` rounds of ``runs`` calls."""
    for _ in range(3):
        work()
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(runs):
            work()
        best = min(best, (time.process_time() - started) / runs * 1000)
    return best


def measure() -> dict[str, tuple[int, float]]:
    """(segments, CPU ms per request) per row: each request's format selection alone and whole."""
    policy = load_policy(None)
    engine = Engine(policy)
    engine.warm_up()
    numbers: dict[str, tuple[int, float]] = {}
    for label, request in REQUESTS.items():
        service = pipeline.route(policy, request).service
        assert service is not None
        fmt = format_for(service.api)
        seen = pipeline.inspection(fmt, service, request, 1 << 24)
        rows: list[tuple[str, Sequence[str]]] = [(f"{label}: format's selection", seen.parsed.texts),
                                                 (f"{label}: whole request", seen.texts)]
        for row, texts in rows:
            if texts:
                numbers[row] = (len(texts), cpu_ms(lambda t=texts: engine.inspect_segments(t), 40))  # type: ignore[misc]
        numbers[f"{label}: pipeline.inspection"] = (0, cpu_ms(
            lambda f=fmt, s=service, r=request: pipeline.inspection(f, s, r, 1 << 24), 200))  # type: ignore[misc]
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="another interpreter (its own tree) measured beside this one")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the child's output
    args = parser.parse_args(argv)
    if args.json:
        print(json.dumps(measure()))
        return 0
    sides: dict[str, dict[str, tuple[int, float]]] = {}
    if args.against:
        command = [args.against, str(Path(__file__).resolve()), "--json"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        sides["against"] = {row: (segments, ms) for row, (segments, ms) in measured.items()}
    sides["this tree"] = measure()
    header = "".join(f" {name + ' seg':>16} {'ms CPU':>8}" for name in sides)
    print(f"{'what the engine reads':58}{header}")
    for row in sides["this tree"]:
        cells = "".join(f" {side.get(row, (0, 0.0))[0] or '':>16} {side.get(row, (0, 0.0))[1]:>8.3f}"
                        for side in sides.values())
        print(f"{row:58}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
