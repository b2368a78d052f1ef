"""The training script's mention replacement and generated names: the same contexts with other names,
labels that follow."""

from __future__ import annotations

import random

from recognizers.person import ChinesePersonRecognizer
from tools.train_names import (
    NameGenerator,
    name_generator,
    person_spans,
    with_generated_names,
    with_replaced_names,
)


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


def _generator(gold: list[dict[str, object]], silver: list[dict[str, object]] | None = None) -> NameGenerator:
    return name_generator(gold, silver or [], ChinesePersonRecognizer(use_model=False))


def test_generated_names_keep_the_shape_and_the_context() -> None:
    recognizer = ChinesePersonRecognizer(use_model=False)
    surname_set = recognizer.feature_lexicon().surnames

    def surname_first(name: str) -> bool:
        return recognizer.to_simplified(name[0]) in surname_set

    generator = _generator(NEWS + POSTS)
    gold_names = {str(r["text"])[s:e] for r in NEWS + POSTS for s, e in person_spans(r)}
    surnames = {name[0] for name in gold_names if surname_first(name)}
    given = {c for name in gold_names if surname_first(name) for c in name[1:]}
    chained = {c for name in gold_names if not surname_first(name) for c in name}
    assert surnames and chained  # both kinds are there to be generated
    copies = with_generated_names(NEWS + POSTS, generator, random.Random(5))
    changed = 0
    for original, copy in zip(NEWS + POSTS, copies, strict=True):
        assert _outside(copy) == _outside(original)
        for (s, e), (cs, ce) in zip(person_spans(original), person_spans(copy), strict=True):
            old, new = str(original["text"])[s:e], str(copy["text"])[cs:ce]
            assert len(new) == len(old)
            changed += new != old
            if surname_first(old):  # a surname and given-name characters of the gold names
                assert new[0] in surnames and set(new[1:]) <= given
            else:  # 小琪, 阿洪, 萌萌: a walk of the chain over such names
                assert set(new) <= chained
    assert changed >= 6


def test_generated_names_come_only_from_the_records_given_and_are_seeded() -> None:
    held_out = [_record("PDT9", "歐陽震華與范姜新到場。", "歐陽震華", "范姜新")]
    generator = _generator(NEWS)
    names = {str(c["text"])[s:e] for _ in range(30)
             for c in with_generated_names(NEWS, generator, random.Random(_)) for s, e in person_spans(c)}
    assert not {"歐", "陽", "震", "華", "范", "姜", "新"} & {c for name in names for c in name}
    assert "歐陽震華" not in names and len(names) > 6  # new names, none of a record not given
    first = with_generated_names(NEWS, generator, random.Random(8))
    assert with_generated_names(NEWS, generator, random.Random(8)) == first
    nothing_learned = _generator([])
    assert with_generated_names(held_out, nothing_learned, random.Random(8)) == held_out  # kept as they are


def test_one_character_and_dotted_names_are_kept() -> None:
    records = [_record("PDT1", "江主席會見了約翰·史密斯和王小明。", "江", "約翰·史密斯", "王小明")]
    copy = with_generated_names(records, _generator(NEWS + records), random.Random(2))[0]
    names = [str(copy["text"])[s:e] for s, e in person_spans(copy)]
    assert names[:2] == ["江", "約翰·史密斯"] and names[2] != "王小明" and len(names[2]) == 3


def test_generated_names_are_never_words_and_rare_surnames_are_not_drawn() -> None:
    recognizer = ChinesePersonRecognizer(use_model=False)
    rare = next(s.text for s in recognizer.surnames if s.tier == "rare" and len(s.text) == 1)
    records = [*NEWS, _record("PDT7", f"{rare}文明與王大同見面。", f"{rare}文明", "王大同")]
    generator = _generator(records)
    words = recognizer.feature_lexicon().word_freq
    drawn = [str(c["text"])[s:e] for seed in range(40)
             for c in with_generated_names(records, generator, random.Random(seed))
             for s, e in person_spans(c)]
    new = [name for name in drawn if name not in {"江"}]
    assert new and not any(name.startswith(rare) for name in new)  # a rare surname is not drawn
    assert not any(recognizer.to_simplified(name) in words for name in new)  # nor a dictionary word
