"""A proxy worker's engine remembers analyses: the verdicts it gives are the ones it would compute.

API clients send the whole conversation with every turn; a worker's engine remembers the
recognizers' results per text (by digest) and judges them again for every request, so the tier,
destination and placeholder numbering of each request are its own. These tests run a remembering
engine and one that remembers nothing side by side over the sample corpus and real strings.
"""

from __future__ import annotations

import json

import pytest

from guard.engine import ANALYSIS_CACHE_ENTRIES, Engine
from guard.policy import load_policy
from guard.sample_corpus import SAMPLE_CORPUS
from guard.workers import build_engine
from tests.engine.test_fast_paths import TABLE


def _texts() -> list[str]:
    with SAMPLE_CORPUS.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()] + [t for t in TABLE if t]


@pytest.fixture(scope="module")
def remembering() -> Engine:
    built = Engine(load_policy(), cache_entries=ANALYSIS_CACHE_ENTRIES)
    built.warm_up()
    return built


def test_remembered_verdicts_equal_computed_ones(remembering: Engine, engine: Engine) -> None:
    texts = _texts()
    assert remembering.cache is not None
    for round_ in range(2):  # the first round computes, the second is answered from memory
        hits = remembering.cache.hits
        for text in texts:
            for destination, tier in (("api.openai.com", None), (None, "approved_onprem")):
                got = remembering.inspect(text, destination, tier=tier)
                want = engine.inspect(text, destination, tier=tier)
                assert got == want, (round_, text)
        if round_ == 1:
            assert remembering.cache.hits - hits == 2 * len(texts)


def test_a_conversation_resent_with_a_new_turn_is_judged_as_a_whole(remembering: Engine,
                                                                  engine: Engine) -> None:
    turns = ["報案人林國宏（身分證字號L102255227）請幫我寫筆錄。",
             "好的，以下是 <PERSON_1> 的筆錄草稿。",
             "再補上他的電話0912-345-678，車號MM-9136，陳志明也在場。"]
    for count in range(1, len(turns) + 1):
        conversation = turns[:count]
        got = remembering.inspect_segments(conversation, "api.openai.com")
        assert got == engine.inspect_segments(conversation, "api.openai.com")
    # The same national ID in the first turn keeps one placeholder however many turns follow.
    assert got.redacted[0].count("<TW_NATIONAL_ID_1>") == 1


def test_one_changed_character_is_a_new_text(remembering: Engine) -> None:
    first = remembering.inspect("聯絡電話 0912-345-678")
    second = remembering.inspect("聯絡電話 0912-345-679")
    types = [[f.entity_type for f in verdict.findings] for verdict in (first, second)]
    assert types == [["PHONE_NUMBER"], ["PHONE_NUMBER"]]
    assert first.placeholders != second.placeholders


def test_the_least_recently_used_text_is_forgotten_first() -> None:
    small = Engine(load_policy(), cache_entries=2)
    assert small.cache is not None
    small.inspect("電話 0912-345-678")
    small.inspect("身分證 A123456789")
    small.inspect("電話 0912-345-678")  # now the most recent
    small.inspect("信箱 chen@example.gov.tw")  # pushes out the ID's text
    assert len(small.cache) == 2
    misses = small.cache.misses
    small.inspect("電話 0912-345-678")
    assert small.cache.misses == misses
    small.inspect("身分證 A123456789")
    assert small.cache.misses == misses + 1


def test_the_memory_holds_a_bounded_number_of_results() -> None:
    """Long texts full of findings push older entries out; one holding too many is not kept."""
    small = Engine(load_policy(), cache_entries=100, cache_results=16)
    assert small.cache is not None
    two = "電話 0912-345-670、電話 0912-345-671"  # two results
    for n in range(10):
        small.inspect(f"第{n}件：{two}")
    assert small.cache.results_held == 16 and len(small.cache) == 8
    misses = small.cache.misses
    small.inspect("第0件：" + two)  # the oldest was forgotten
    assert small.cache.misses == misses + 1
    crowded = "、".join(f"電話 0912-345-6{i:02d}" for i in range(3))  # 3 > 16 // 8: not kept
    assert len(small.inspect(crowded).findings) == 3
    small.inspect(crowded)
    assert small.cache.misses == misses + 3 and small.cache.results_held == 16


def test_explain_always_computes(remembering: Engine) -> None:
    assert remembering.cache is not None
    text = "車主王小明，車號ABC-1235"
    remembering.inspect(text)
    hits = remembering.cache.hits
    explained = remembering.candidates(text, explain=True)
    assert remembering.cache.hits == hits
    assert any(c.rule_source for c in explained)


def test_only_the_proxy_workers_engine_remembers() -> None:
    assert Engine(load_policy()).cache is None  # scan, explain and the benchmarks compute every time
    worker_engine = build_engine(None)
    assert worker_engine.cache is not None


def test_threads_sharing_a_small_memory_get_the_computed_verdicts(engine: Engine) -> None:
    """Entries come and go while four threads read and write them: every verdict is still right."""
    from concurrent.futures import ThreadPoolExecutor

    shared = Engine(load_policy(), cache_entries=4)
    texts = _texts()[:24] * 3
    want = [engine.inspect(text) for text in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(shared.inspect, texts))
    assert got == want
