"""``Engine.candidates(explain=True)``: the facts ``guard explain`` shows, straight from the engine."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guard.engine import Candidate, Engine, Outcome
from guard.policy import load_policy
from guard.verdict import Decision

# Two declared recognizers that overlap, a validator, an allow-list and a tier override.
POLICY = r"""
    extends: default
    entities:
      DOC_NUMBER:  {action: warn, min_score: 0.5}
      CASE_REF:    {action: warn, min_score: 0.5}
      TW_UBN:      {action: redact, min_score: 0.5}
    allow_list:
      DOC_NUMBER: ["AB-1234"]
    tiers:
      approved_onprem:
        entities:
          CASE_REF: {action: allow}
    recognizers:
      - name: doc_number
        supported_entity: DOC_NUMBER
        patterns: [{name: doc, regex: '[A-Z]{2}-\d{4}', score: 0.6}]
        context: [文號]
      - name: case_ref
        supported_entity: CASE_REF
        patterns: [{name: ref, regex: '[A-Z]{2}-\d{4}-\d{2}', score: 0.9}]
      - name: ubn_yaml
        supported_entity: TW_UBN
        patterns: [{name: ubn, regex: '(?<!\d)\d{8}(?!\d)', score: 0.3}]
        context: [統編]
        validator: tw_ubn
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = tmp_path_factory.mktemp("policy") / "p.yaml"
    path.write_text(textwrap.dedent(POLICY), encoding="utf-8")
    return Engine(load_policy(path))


def by_value(engine: Engine, text: str, tier: str = "external") -> dict[tuple[str, str], Candidate]:
    return {(c.finding.entity_type, text[c.finding.start:c.finding.end]): c
            for c in engine.candidates(text, tier=tier, explain=True)}


def test_overlap_names_the_stronger_finding(engine: Engine) -> None:
    text = "請查 XY-2024-07 的進度"
    found = by_value(engine, text)
    weaker = found[("DOC_NUMBER", "XY-2024")]
    assert weaker.outcome is Outcome.OVERLAPPED
    assert weaker.overlapped_by is not None and weaker.overlapped_by.entity_type == "CASE_REF"
    assert found[("CASE_REF", "XY-2024-07")].outcome is Outcome.ACTED


def test_context_and_base_score(engine: Engine) -> None:
    text = "RR-1111 是去年的，今年改用新的編號規則以後，文號 QQ-5678"
    found = by_value(engine, text)
    raised, plain = found[("DOC_NUMBER", "QQ-5678")], found[("DOC_NUMBER", "RR-1111")]
    assert (raised.base_score, raised.finding.context_word) == (0.6, "文號")
    assert raised.finding.score == pytest.approx(0.95)
    assert plain.finding.context_word is None and plain.finding.score == 0.6
    assert plain.context_words == ("文號",)
    assert plain.rule_source == "entities.DOC_NUMBER" and plain.rule.min_score == 0.5


def test_allow_list_hit_is_reported_even_below_the_threshold(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(POLICY).replace("score: 0.6", "score: 0.4"), encoding="utf-8")
    engine = Engine(load_policy(path))
    below = by_value(engine, "見 AB-1234")[("DOC_NUMBER", "AB-1234")]
    assert below.outcome is Outcome.BELOW_THRESHOLD and below.allow_listed
    listed = by_value(engine, "文號 AB-1234")[("DOC_NUMBER", "AB-1234")]
    assert listed.outcome is Outcome.ALLOW_LISTED and listed.allow_listed


def test_allowed_by_rule_and_by_tier(engine: Engine) -> None:
    text = "案號 XY-2024-07"
    assert by_value(engine, text, "approved_onprem")[("CASE_REF", "XY-2024-07")].outcome \
        is Outcome.ALLOWED_BY_TIER
    default = Engine(load_policy())
    ubn = by_value(default, "統一編號38591722")[("TW_UBN", "38591722")]
    assert ubn.outcome is Outcome.ALLOWED_BY_RULE and ubn.rule_source == "entities.TW_UBN"
    personal = "承辦人林育賢，電話0936-218-457"
    assert default.inspect(personal, tier="approved_onprem").decision is Decision.ALLOW
    assert default.inspect(personal).decision is Decision.REDACT


def test_validator_rejections_are_listed_only_when_explaining(engine: Engine) -> None:
    text = "統編38591723，另一家統編38591722"
    found = by_value(engine, text)
    rejected = found[("TW_UBN", "38591723")]
    assert rejected.outcome is Outcome.REJECTED_BY_VALIDATOR
    assert (rejected.finding.score, rejected.base_score, rejected.validation) == (0.0, 0.3, False)
    valid = [c for c in found.values() if c.finding.recognizer == "ubn_yaml" and c.outcome is Outcome.ACTED]
    assert [text[c.finding.start:c.finding.end] for c in valid] == ["38591722"]
    assert valid[0].validation is True and valid[0].finding.score == 1.0
    plain = engine.candidates(text)
    assert all(c.outcome is not Outcome.REJECTED_BY_VALIDATOR for c in plain)
    assert all(c.rule_source == "" for c in plain)               # explain-only fields stay empty


def test_explain_does_not_change_the_verdict(engine: Engine) -> None:
    text = "文號 QQ-5678，案號 XY-2024-07，統編38591722"
    acted = [c.finding for c in engine.candidates(text, explain=True) if c.outcome is Outcome.ACTED]
    assert tuple(acted) == engine.inspect(text).findings
