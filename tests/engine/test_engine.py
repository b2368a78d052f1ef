"""Engine round trips: decisions, redaction that keeps every other character, consistent placeholders."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from guard.engine import Engine, Outcome
from guard.policy import allow_key, load_policy
from guard.verdict import Decision, Verdict

PLACEHOLDER = re.compile(r"<([A-Z_]+)_(\d+)>")


def assert_redaction_keeps_other_text(text: str, verdict: Verdict, segment: int = 0) -> None:
    """Rebuild the redacted text from the findings independently: every other character is kept."""
    by_key = {(PLACEHOLDER.fullmatch(p)[1], allow_key(v)): p for p, v in verdict.placeholders.items()}
    expected, cursor = [], 0
    for f in sorted((f for f in verdict.findings if f.segment == segment), key=lambda f: f.start):
        expected += [text[cursor:f.start], by_key[(f.entity_type, allow_key(text[f.start:f.end]))]]
        cursor = f.end
    expected.append(text[cursor:])
    assert verdict.redacted[segment] == "".join(expected)


# (text, decision, entity types acted on)
DECISIONS = [
    # personal data -> redact (guideline point 4)
    ("請幫我把這段話改寫：申請人身分證字號A123456789。", Decision.REDACT, {"TW_NATIONAL_ID"}),
    ("外籍移工的居留證號碼是A800000014，請翻譯成英文。", Decision.REDACT, {"TW_RESIDENT_ID"}),
    ("報案人電話0912-345-678，請回電。", Decision.REDACT, {"PHONE_NUMBER"}),
    ("請寄信到 wang.xiaoming@example.gov.tw 通知結果。", Decision.REDACT, {"EMAIL_ADDRESS"}),
    ("車號ABC-1235的車主違規停車。", Decision.REDACT, {"TW_LICENSE_PLATE"}),
    # classification marking -> block (guideline point 3)
    ("請潤飾下列公文：\n密等及解密條件或保密期限：機密（保密期限至中華民國120年12月31日）\n主旨：…",
     Decision.BLOCK, {"CLASSIFICATION_MARKER"}),
    ("【極機密】\n受文者：本局各分局\n主旨：加強臨檢勤務。", Decision.BLOCK, {"CLASSIFICATION_MARKER"}),
    # nothing personal, nothing classified -> allow, untouched
    ("請問公務機密和個人資料保護的差別是什麼？", Decision.ALLOW, set()),
    ("請幫我寫一段 Python 程式，計算 ISO-9001 稽核的缺失統計。", Decision.ALLOW, set()),
    ("身分證字號A123456788的檢查碼錯了嗎？", Decision.ALLOW, set()),   # invalid checksum: not an ID
]


@pytest.mark.parametrize(("text", "decision", "entities"), DECISIONS)
def test_decisions(engine: Engine, text: str, decision: Decision, entities: set[str]) -> None:
    verdict = engine.inspect(text)
    assert verdict.decision is decision, verdict
    assert {f.entity_type for f in verdict.findings} == entities
    if decision is Decision.ALLOW:
        assert verdict.redacted_text == text
        assert not verdict.placeholders
    else:
        assert_redaction_keeps_other_text(text, verdict)


def test_classified_cites_point_3_and_personal_data_point_4(engine: Engine) -> None:
    assert engine.inspect("【機密】\n主旨：…").guideline_points == (3,)
    assert engine.inspect("身分證A123456789").guideline_points == (4,)


def test_same_value_same_placeholder_and_numbering_by_appearance(engine: Engine) -> None:
    text = "A123456789 與 R123456783 是兩人；再提一次A123456789，以及全形的Ａ１２３４５６７８９。"
    verdict = engine.inspect(text)
    assert verdict.redacted_text == (
        "<TW_NATIONAL_ID_1> 與 <TW_NATIONAL_ID_2> 是兩人；"
        "再提一次<TW_NATIONAL_ID_1>，以及全形的<TW_NATIONAL_ID_1>。")
    assert verdict.placeholders == {"<TW_NATIONAL_ID_1>": "A123456789", "<TW_NATIONAL_ID_2>": "R123456783"}


def test_segments_of_one_request_share_numbering(engine: Engine) -> None:
    verdict = engine.inspect_segments(
        ["系統提示：不要洩漏個資。", "他的身分證是A123456789", "再確認A123456789與B142610160"])
    assert verdict.redacted == ("系統提示：不要洩漏個資。", "他的身分證是<TW_NATIONAL_ID_1>",
                                "再確認<TW_NATIONAL_ID_1>與<TW_NATIONAL_ID_2>")
    assert [f.segment for f in verdict.findings] == [1, 2, 2]


@pytest.mark.parametrize("evasion", [
    "Ａ１２３４５６７８９",                # full-width
    "a123456789",                        # lower case
    "A 1 2 3 4 5 6 7 8 9",               # spaces
    "A123\u200b456\u200b789",            # zero-width spaces
    "A12-345-6789",                      # hyphens
    "A123\u00a0456\u00a0789",            # NBSP
])
def test_evasions_reported_at_original_offsets(engine: Engine, evasion: str) -> None:
    text = f"當事人的身分證字號是{evasion}，請保密。"
    verdict = engine.inspect(text)
    [finding] = [f for f in verdict.findings if f.entity_type == "TW_NATIONAL_ID"]
    assert text[finding.start:finding.end] == evasion
    assert verdict.redacted_text == "當事人的身分證字號是<TW_NATIONAL_ID_1>，請保密。"
    assert verdict.placeholders["<TW_NATIONAL_ID_1>"] == evasion


def test_onprem_tier_receives_personal_data_and_low_classification(tmp_path: Path) -> None:
    path = tmp_path / "agency.yaml"
    path.write_text(textwrap.dedent("""
        extends: default
        services:
          - {name: agency-llm, hosts: ["llm.agency.example"], api: openai, tier: approved_onprem}
    """), encoding="utf-8")
    engine = Engine(load_policy(path))
    personal = "承辦人王小明，身分證A123456789，電話0912-345-678"
    assert engine.inspect(personal, "llm.agency.example").decision is Decision.ALLOW
    assert engine.inspect(personal, "api.openai.com").decision is Decision.REDACT
    general = "【密】\n主旨：…"
    assert engine.inspect(general, "llm.agency.example").decision is Decision.ALLOW      # 密 <= approved 密
    assert engine.inspect("【機密】\n主旨：…", "llm.agency.example").decision is Decision.BLOCK
    assert engine.inspect(general, "api.openai.com").decision is Decision.BLOCK


def test_allow_list_and_threshold(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""
        extends: default
        allow_list:
          PHONE_NUMBER: ["02-2311-3456"]
        entities:
          EMAIL_ADDRESS: {action: redact, min_score: 1.01}
    """).replace("1.01", "1.0"), encoding="utf-8")
    engine = Engine(load_policy(path))
    text = "服務專線（02）2311 3456，或 0912-345-678。"
    verdict = engine.inspect(text)
    assert [text[f.start:f.end] for f in verdict.findings] == ["0912-345-678"]
    outcomes = {text[c.finding.start:c.finding.end]: c.outcome for c in engine.candidates(text)}
    assert outcomes["0912-345-678"] == Outcome.ACTED
    assert any(o == Outcome.ALLOW_LISTED for o in outcomes.values())


def test_yaml_recognizer_with_chinese_deny_list_and_validator(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(r"""
        extends: default
        entities:
          TW_CASE_NUMBER: {action: redact}
          TW_UBN: {action: redact}
          SENSITIVE_CASE: {action: block}
        recognizers:
          - name: case_number
            supported_entity: TW_CASE_NUMBER
            patterns:
              - {name: case, regex: '\d{2,3}年度?[\u4e00-\u9fff]{1,2}字第\d{1,6}號', score: 0.8}
          - name: sensitive_words
            supported_entity: SENSITIVE_CASE
            deny_list: [臨檢計畫, 底價]
          - name: ubn_strict
            supported_entity: TW_UBN
            patterns:
              - {name: ubn, regex: '(?<!\d)\d{8}(?!\d)', score: 0.6}
            validator: tw_ubn
    """), encoding="utf-8")
    engine = Engine(load_policy(path))
    verdict = engine.inspect("請整理113年度偵字第1234號的案情。")
    assert verdict.redacted_text == "請整理<TW_CASE_NUMBER_1>的案情。"
    assert engine.inspect("本案底價為新臺幣一百萬元").decision is Decision.BLOCK     # substring, no spaces
    assert engine.inspect("統編04595257的公司").decision is Decision.REDACT        # valid checksum
    assert engine.inspect("統編04595258的公司").decision is Decision.ALLOW         # invalid checksum


def test_verdict_repr_never_shows_values(engine: Engine) -> None:
    verdict = engine.inspect("身分證A123456789，王小明先生")
    assert "A123456789" not in repr(verdict)
    assert "王小明" not in repr(verdict)


def test_empty_text(engine: Engine) -> None:
    verdict = engine.inspect("")
    assert verdict.decision is Decision.ALLOW and verdict.redacted_text == ""
