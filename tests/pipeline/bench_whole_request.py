"""Benchmark: engine time of a typical SDK request, the format's selection alone vs the whole request.

Run ``.venv/bin/python -m tests.pipeline.bench_whole_request``: prints a side-by-side table, asserts nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

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


def per_call_ms(work: Callable[[], object], runs: int) -> float:
    for _ in range(3):
        work()
    started = time.perf_counter()
    for _ in range(runs):
        work()
    return (time.perf_counter() - started) / runs * 1000


def main() -> None:
    policy = load_policy(None)
    engine = Engine(policy)
    engine.warm_up()
    request = pipeline.Request("POST", "/v1/chat/completions", HEADERS, BODY, "api.openai.com", 443,
                               ("api.openai.com", 443), "api.openai.com")
    service = pipeline.route(policy, request).service
    assert service is not None
    fmt = format_for(service.api)
    seen = pipeline.inspection(fmt, service, request, 1 << 24)
    rows: list[tuple[str, Sequence[str]]] = [("format's selection only (before)", seen.parsed.texts),
                                             ("whole request (now)", seen.texts)]
    print(f"{'what the engine reads':34} {'segments':>8} {'ms/request':>11}")
    for label, texts in rows:
        ms = per_call_ms(lambda t=texts: engine.inspect_segments(t), 40)  # type: ignore[misc]
        print(f"{label:34} {len(texts):>8} {ms:>11.2f}")
    parse = per_call_ms(lambda: pipeline.inspection(fmt, service, request, 1 << 24), 200)
    print(f"{'pipeline.inspection (parse, walk)':34} {'':>8} {parse:>11.2f}")


if __name__ == "__main__":
    main()
