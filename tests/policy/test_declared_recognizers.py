"""Recognizers declared in YAML behave like the Python ones: spans, context scoring, validators.

The sensitive-case vocabulary (policies/sensitive-cases.yaml) is tested here as recognizers, one
table of real sentences per kind; its decisions are tested by its own examples (test_examples.py).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guard.engine import declared_recognizer
from guard.policy import BUNDLED_DIR, RecognizerSpec, load_policy
from recognizers.declared import DeclaredRecognizer
from recognizers.tw_national_id import TwNationalIdRecognizer
from recognizers.tw_ubn import TwUbnRecognizer
from tests.helpers import found, spans

SENSITIVE = BUNDLED_DIR / "sensitive-cases.yaml"
SENSITIVE_ENTITIES = {
    "TW_CASE_NUMBER", "CRIMINAL_RECORD", "WANTED_STATUS", "ENTRY_EXIT_RECORD", "WHISTLEBLOWER",
    "RAID_PLAN", "WARRANT", "RESERVE_PRICE", "TENDER_COMMITTEE",
}


def declared(policy_path: Path, name: str) -> DeclaredRecognizer:
    [spec] = [r for r in load_policy(policy_path).recognizers if r.name == name]
    return declared_recognizer(spec)


def from_yaml(tmp_path: Path, body: str) -> DeclaredRecognizer:
    path = tmp_path / "p.yaml"
    path.write_text("extends: default\n" + textwrap.dedent(body), encoding="utf-8")
    [spec] = load_policy(path).recognizers
    return declared_recognizer(spec)


CASE_NUMBER = declared(SENSITIVE, "tw_case_number")


# (text, expected span, score range): the regex the brief names, in and out of context.
@pytest.mark.parametrize(("text", "span", "low", "high"), [
    # prosecution case numbers: above the threshold on their own, higher with context
    ("臺灣臺北地方檢察署113年度偵字第1234號", "113年度偵字第1234號", 0.6, 0.6),
    ("113偵字第1234號請於本週結案", "113偵字第1234號", 0.6, 0.6),
    ("113年偵續字第7號", "113年偵續字第7號", 0.6, 0.6),
    ("本案案號113年度他字第56號", "113年度他字第56號", 0.95, 0.95),           # 案號 raises it
    ("１１３年度偵字第１２３４號的偵查進度", "１１３年度偵字第１２３４號", 0.95, 0.95),  # full-width
    # court case numbers: below on their own (published decisions), above with context
    ("最高法院112年度台上字第3456號判決", "112年度台上字第3456號", 0.4, 0.4),
    ("被告於112年度訴字第88號審理中", "112年度訴字第88號", 0.75, 0.75),
    ("少年法院113年度少連偵字第5號", "113年度少連偵字第5號", 0.6, 0.6),
])
def test_case_number_spans_and_scores(text: str, span: str, low: float, high: float) -> None:
    [(entity, value, score)] = spans(CASE_NUMBER, text, min_score=0.0)
    assert (entity, value) == ("TW_CASE_NUMBER", span)
    assert low <= score <= high, score


@pytest.mark.parametrize("text", [
    "中華民國113年5月11日北市刑字第1133001234號函",     # a date and a 公文 document number
    "府授消字第1130012345號",                          # a document number without a year
    "113年度第2次評選會議",                             # no 字第…號
    "1113年度偵字第1234號",                             # not a two- or three-digit ROC year
])
def test_case_number_traps(text: str) -> None:
    assert spans(CASE_NUMBER, text, min_score=0.0) == []


# (recognizer, innocent mention, the same word in a sensitive context, the context word)
VOCABULARY = [
    ("criminal_record", "新聞摘要：嫌犯有竊盜前科，警方持續追查中。", "請幫我查詢該員的前科", "查詢"),
    ("criminal_record", "請說明更生人前科塗銷的規定。", "以下是調閱的犯罪紀錄：", "調閱"),
    ("wanted_status", "電影《全境通緝》的劇情大綱是什麼？", "請確認這位民眾有無通緝", "有無"),
    ("entry_exit_record", "入出境紀錄可以委託他人申請嗎？", "調閱當事人近三年入出境紀錄", "調閱"),
    ("whistleblower", "檢舉人身分應予保密的法律依據為何？", "檢舉人姓名及電話如附件", "姓名"),
    ("raid_plan", "臨檢計畫的法律依據是什麼？", "本週五臨檢計畫：集合時間晚上十點", "時間"),
    ("raid_plan", "搜索計畫要經過誰核准？", "擴大查緝毒品專案計畫如下", "如下"),
    ("warrant", "拘票和傳票有何不同？", "搜索票應受搜索處所：板橋區文化路", "受搜索"),
    ("reserve_price", "機關辦理採購應訂定底價。", "本案底價訂為新臺幣三百萬元", "新臺幣"),
    ("tender_committee", "評選委員名單是否應於決標後公開？", "本案評選委員名單如下：召集人", "如下"),
]


@pytest.mark.parametrize(("name", "innocent", "sensitive", "word"), VOCABULARY)
def test_vocabulary_needs_context(name: str, innocent: str, sensitive: str, word: str) -> None:
    recognizer = declared(SENSITIVE, name)
    [(_, _, plain)] = spans(recognizer, innocent, min_score=0.0)
    [(_, _, raised)] = spans(recognizer, sensitive, min_score=0.0)
    assert plain == pytest.approx(0.3)             # under min_score 0.5: a mention is not acted on
    assert raised == pytest.approx(0.65)           # 0.3 + the context enhancer's 0.35
    assert found(recognizer, innocent) == []
    assert len(found(recognizer, sensitive)) == 1
    assert word in recognizer.context


@pytest.mark.parametrize(("name", "text", "value"), [
    ("criminal_record", "請把該員前科資料整理成表格", "前科"),
    ("criminal_record", "附上犯罪紀錄明細", "犯罪紀錄"),
    ("wanted_status", "通緝紀錄顯示仍在逃", "通緝"),
])
def test_the_record_itself_stands_on_its_own(name: str, text: str, value: str) -> None:
    [(_, found_value, score)] = spans(declared(SENSITIVE, name), text, min_score=0.0)
    assert found_value == value and score >= 0.6


def test_a_list_of_kinds_of_secret_is_not_a_record() -> None:
    text = "機關應保密的資訊包括車籍、前科、通緝、勞保等資料。"
    for name in ("criminal_record", "wanted_status"):
        assert found(declared(SENSITIVE, name), text) == [], name


def test_reserve_price_with_an_amount_stands_on_its_own() -> None:
    recognizer = declared(SENSITIVE, "reserve_price")
    assert spans(recognizer, "底價為1250000元") == [("RESERVE_PRICE", "底價", 0.6)]
    assert spans(recognizer, "本案底價為新臺幣1,250,000元")[0][2] == pytest.approx(0.95)


def test_sensitive_cases_are_absent_from_the_default_policy() -> None:
    default = load_policy()
    sensitive = load_policy(SENSITIVE)
    assert default.recognizers == ()
    assert not SENSITIVE_ENTITIES & set(default.entities)
    assert {r.supported_entity for r in sensitive.recognizers} == SENSITIVE_ENTITIES
    for entity in SENSITIVE_ENTITIES:
        rule = sensitive.rule_for(entity, "external")
        assert (rule.action, rule.min_score, rule.guideline_point) == ("warn", 0.5, 4)
        assert sensitive.rule_for(entity, "approved_onprem").action == "allow"


def test_an_agency_switches_them_on_by_name(tmp_path: Path) -> None:
    path = tmp_path / "agency.yaml"
    path.write_text("extends: sensitive-cases\nentities:\n  RESERVE_PRICE: {action: block}\n",
                    encoding="utf-8")
    policy = load_policy(path)
    assert {r.supported_entity for r in policy.recognizers} == SENSITIVE_ENTITIES
    assert policy.rule_for("RESERVE_PRICE", "external").action == "block"
    assert policy.rule_for("PERSON", "external").action == "redact"           # from default, two levels up


# A national ID declared in YAML with the built-in checksum finds what the Python recognizer finds.
YAML_NATIONAL_ID = """
    recognizers:
      - name: national_id_yaml
        supported_entity: TW_NATIONAL_ID
        patterns:
          - {name: id, regex: '(?<![A-Za-z0-9])[A-Z][12]\\d{8}(?![A-Za-z0-9])', score: 0.4}
        context: [身分證, 證號]
        validator: tw_national_id
"""


@pytest.mark.parametrize(("text", "expected"), [
    # valid
    ("申請人身分證字號F225837467，請協助填寫。", ["F225837467"]),
    ("名單：K103958272、P206183549", ["K103958272", "P206183549"]),
    ("T120477639", ["T120477639"]),
    # invalid check digit: the validator rejects it
    ("身分證字號F225837468", []),
    ("K103958273", []),
    # a resident certificate is not a national ID; a longer code is not an ID
    ("居留證H812304560", []),
    ("序號XF2258374670", []),
])
def test_yaml_validator_matches_the_python_recognizer(tmp_path: Path, text: str, expected: list[str]) -> None:
    yaml_recognizer = from_yaml(tmp_path, YAML_NATIONAL_ID)
    assert found(yaml_recognizer, text) == expected
    assert found(TwNationalIdRecognizer(), text) == expected
    for _, _, score in spans(yaml_recognizer, text):
        assert score == 1.0                        # a passed checksum is certain, as in Presidio


YAML_UBN = """
    recognizers:
      - name: ubn_yaml
        supported_entity: TW_UBN
        patterns:
          - {name: ubn, regex: '(?<!\\d)\\d{8}(?!\\d)', score: 0.3}
        context: [統一編號, 統編]
        validator: tw_ubn
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("廠商統一編號38591722，請核對。", ["38591722"]),
    ("買受人統編62049154", ["62049154"]),
    ("統一編號38591723", []),                      # bad check digit
    ("統編 12345678", []),
])
def test_yaml_ubn_validator_rejects_bad_checksums(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert found(from_yaml(tmp_path, YAML_UBN), text) == expected
    assert found(TwUbnRecognizer(), text) == expected


def test_rejected_matches_are_reported_for_explain(tmp_path: Path) -> None:
    recognizer = from_yaml(tmp_path, YAML_UBN)
    assert recognizer.rejected_matches("統編38591723與38591722") == [(2, 10, "ubn", 0.3)]


def test_context_words_work_without_spaces(tmp_path: Path) -> None:
    recognizer = from_yaml(tmp_path, """
        recognizers:
          - name: plan_words
            supported_entity: RAID_PLAN
            deny_list: [臨檢計畫]
            deny_list_score: 0.3
            context: [集合]
    """)
    [(_, _, near)] = spans(recognizer, "明晚集合後執行臨檢計畫", min_score=0.0)
    [(_, _, far)] = spans(recognizer, "集合" + "的" * 25 + "臨檢計畫", min_score=0.0)
    assert near == pytest.approx(0.65) and far == pytest.approx(0.3)


def test_spec_round_trip_keeps_everything() -> None:
    spec = RecognizerSpec(name="x", supported_entity="X_ID", deny_list=("甲",), deny_list_score=0.2,
                          context=("乙",))
    recognizer = declared_recognizer(spec)
    assert recognizer.context == ["乙"]
    assert [(p.name, p.score) for p in recognizer.patterns] == [("deny_list", 0.2)]


def test_an_inherited_recognizer_is_switched_off_by_name(tmp_path: Path) -> None:
    path = tmp_path / "agency.yaml"
    path.write_text(textwrap.dedent("""\
        extends: sensitive-cases
        recognizers:
          - {name: raid_plan, supported_entity: RAID_PLAN, enabled: false}
    """), encoding="utf-8")
    names = {r.name for r in load_policy(path).recognizers}
    assert "raid_plan" not in names and "warrant" in names
