"""The training script's mention replacement: the same contexts with other names, labels that follow."""

from __future__ import annotations

import random

from tools.train_names import person_spans, with_replaced_names


def _record(record_id: str, text: str, *names: str) -> dict[str, object]:
    entities, at = [], 0
    for name in names:
        start = text.index(name, at)
        entities.append({"type": "PERSON", "start": start, "end": start + len(name)})
        at = start + len(name)
    return {"id": record_id, "text": text, "entities": entities}


NEWS = [
    _record("PDT00001", "記者張敬濤報導，李嵐清昨天說明。", "張敬濤", "李嵐清"),
    _record("PDT00002", "柯林頓與何泰權會面。", "柯林頓", "何泰權"),
    _record("PDT00003", "今天天氣很好，沒有人名。"),
    _record("PDT00004", "王小明和陳志明都來了。", "王小明", "陳志明"),
]
POSTS = [
    _record("WBT00001", "@小琪 你好，阿洪也來了", "小琪", "阿洪"),
    _record("WBT00002", "萌萌說明天見", "萌萌"),
]


def _outside(record: dict[str, object]) -> list[str]:
    """The text between and around the labelled names."""
    text, parts, at = str(record["text"]), [], 0
    for start, end in person_spans(record):
        parts.append(text[at:start])
        at = end
    return [*parts, text[at:]]


def test_names_are_swapped_and_the_labels_follow() -> None:
    copies = with_replaced_names(NEWS + POSTS, random.Random(12))
    assert [c["id"] for c in copies] == [r["id"] for r in NEWS + POSTS]
    news_names = {"張敬濤", "李嵐清", "柯林頓", "何泰權", "王小明", "陳志明"}
    post_names = {"小琪", "阿洪", "萌萌"}
    for original, copy in zip(NEWS + POSTS, copies, strict=True):
        assert _outside(copy) == _outside(original)  # the context is the same, character for character
        names = [str(copy["text"])[s:e] for s, e in person_spans(copy)]
        assert len(names) == len(person_spans(original))
        pool = news_names if str(copy["id"]).startswith("PD") else post_names  # news names into news only
        assert set(names) <= pool
        own = {str(original["text"])[s:e] for s, e in person_spans(original)}
        assert not set(names) & own  # never a record's own name while the pool has others


def test_a_record_without_names_is_kept_and_the_draw_is_seeded() -> None:
    first = with_replaced_names(NEWS, random.Random(3))
    assert first[2] is NEWS[2]
    assert with_replaced_names(NEWS, random.Random(3)) == first
    draws = {tuple(str(c["text"]) for c in with_replaced_names(NEWS, random.Random(seed)))
             for seed in range(20)}
    assert len(draws) > 1  # the seed decides which names go where


def test_one_character_names_stay() -> None:
    records = [_record("PDT1", "江主席會見了王小明。", "江", "王小明"),
               _record("PDT2", "陳志明說好。", "陳志明")]
    for copy in with_replaced_names(records, random.Random(4)):
        names = [str(copy["text"])[s:e] for s, e in person_spans(copy)]
        if copy["id"] == "PDT1":
            assert names[0] == "江" and names[1] == "陳志明"  # the surname stays; the full name is swapped
        else:
            assert names == ["王小明"]


def test_a_corpus_with_only_one_character_names_is_copied_as_it_is() -> None:
    records = [_record("WBT1", "江主席好", "江")]
    assert with_replaced_names(records, random.Random(0)) == records
