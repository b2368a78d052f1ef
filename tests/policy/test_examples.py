"""A policy's ``examples``: the bundled ones pass, cover what they must, and the schema checks them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from guard.authoring import run_examples
from guard.authoring.cases import CaseResult
from guard.engine import Engine
from guard.policy import BUNDLED_DIR, DEFAULT_POLICY, PolicyError, example_lines, load_policy

SENSITIVE = BUNDLED_DIR / "sensitive-cases.yaml"
CONTRACT_ENTITIES = {"TW_NATIONAL_ID", "TW_RESIDENT_ID", "TW_LICENSE_PLATE", "PERSON",
                     "CLASSIFICATION_MARKER", "PHONE_NUMBER", "EMAIL_ADDRESS"}
MORE_ENTITIES = {"TW_UBN", "TW_PASSPORT", "TW_NHI_CARD", "CREDIT_CARD"}
# The project's development corpus lives outside the repository (beside it, in ../shared): when it is
# there, the bundled examples must not be its sentences (they would make its scores look better).
DEV_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "dev.jsonl"


def results(path: Path) -> list[CaseResult]:
    policy = load_policy(path)
    return run_examples(Engine(policy), example_lines(path))


@pytest.mark.parametrize("path", [DEFAULT_POLICY, SENSITIVE], ids=lambda p: p.name)
def test_bundled_examples_pass(path: Path) -> None:
    cases = results(path)
    assert cases
    failed = [(c.line, c.case.note, c.verdict.decision.value, sorted(c.acted_types)) for c in cases
              if not c.passed]
    assert failed == []
    assert all(c.line for c in cases)                         # every case points at its line


def test_default_examples_cover_every_entity_and_the_guideline() -> None:
    policy = load_policy()
    examples = policy.examples
    covered = {e for x in examples for e in (*(x.expect_entities or ()), *(x.expect_allowed or ()))}
    assert covered >= CONTRACT_ENTITIES | MORE_ENTITIES
    assert any(x.expect_decision == "block" and "CLASSIFICATION_MARKER" in (x.expect_entities or ())
               and not x.tier for x in examples)                                   # point 3
    assert any(x.expect_decision == "redact" for x in examples)                    # point 4
    assert any(x.tier == "approved_onprem" and x.expect_decision == "allow" for x in examples)
    assert any(x.expect_decision == "allow" and x.expect_entities == () and not x.expect_allowed
               for x in examples)                                                  # negatives
    # an allow-list case whose value the recognizer really finds, and that the allow-list lets through
    engine = Engine(policy)
    listed = [x for x in examples if not x.tier and "PHONE_NUMBER" in (x.expect_allowed or ())]
    assert listed
    for x in listed:
        outcomes = {c.outcome.name for c in engine.candidates(x.text, explain=True)}
        assert "ALLOW_LISTED" in outcomes


def test_sensitive_examples_include_innocent_mentions_of_every_kind() -> None:
    policy = load_policy(SENSITIVE)
    innocent = [x for x in policy.examples if x.expect_decision == "allow" and x.expect_entities == ()]
    engine = Engine(policy)
    mentioned = {c.finding.entity_type for x in innocent for c in engine.candidates(x.text)}
    # Innocent mentions of most kinds are there, and the recognizers see them (below the threshold).
    assert len(mentioned) >= 8, mentioned


@pytest.mark.skipif(not DEV_CORPUS.is_file(), reason="no ../shared/corpus/dev.jsonl beside the repository")
@pytest.mark.parametrize("path", [DEFAULT_POLICY, SENSITIVE], ids=lambda p: p.name)
def test_example_texts_are_not_corpus_sentences(path: Path) -> None:
    lines = DEV_CORPUS.read_text(encoding="utf-8").splitlines()
    corpus = [json.loads(line)["text"] for line in lines if line]
    for example in load_policy(path).examples:
        assert not any(example.text in text or text in example.text for text in corpus), example.text


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.mark.parametrize(("body", "line", "words"), [
    ("""\
     extends: default
     examples:
       - text: x
         expect_decision: allow
         destination: api.openai.com
         tier: approved_onprem
     """, 3, ["examples[0]", "destination", "not both"]),
    ("""\
     extends: default
     examples:
       - text: x
         expect_decision: allow
         expect_allowed: [TW_PHONE]
     """, None, ["examples[0].expect_allowed", "TW_PHONE"]),
    ("""\
     extends: default
     examples:
       - text: x
         expect_decision: allow
         tier: onprem
     """, 5, ["examples[0].tier", "onprem"]),
    ("""\
     extends: default
     examples:
       - text: x
         expect_decison: allow
     """, 4, ["unknown key", "expect_decison"]),
])
def test_bad_examples_name_file_and_line(tmp_path: Path, body: str, line: int | None,
                                         words: list[str]) -> None:
    path = write(tmp_path, body)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    if line is not None:
        assert caught.value.line == line, message
    for word in words:
        assert word in message, (word, message)


def test_example_lines_point_at_each_entry(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        extends: default
        examples:
          - {text: a, expect_decision: allow}

          - text: b
            expect_decision: allow
    """)
    assert example_lines(path) == [3, 5]


def test_a_child_tests_its_own_examples_only(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        extends: default
        examples:
          - {text: 身分證F225837467, expect_decision: redact, expect_entities: [TW_NATIONAL_ID]}
    """)
    assert [x.text for x in load_policy(path).examples] == ["身分證F225837467"]
