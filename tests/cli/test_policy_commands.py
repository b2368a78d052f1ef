"""``guard explain``, ``guard policy test`` and ``guard policy diff``, run as the real command."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

from guard.engine import Engine
from guard.policy import BUNDLED_DIR, DEFAULT_POLICY, load_policy
from guard.sample_corpus import SAMPLE_CORPUS
from tests.cli.test_scan_contract import run

SENSITIVE = BUNDLED_DIR / "sensitive-cases.yaml"


def write(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


# ---------------------------------------------------------------- explain

def test_explain_shows_below_threshold_and_allow_listed_candidates_with_reasons() -> None:
    text = "新聞提到他有前科，記者沒有多說什麼細節。請查詢該員前科。行政院總機（02）3356 6500"
    first, second = text.index("前科"), text.rindex("前科")
    done = run(["explain", "--policy", str(SENSITIVE), text])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    blocks = out.split("\n\n")
    mention = next(b for b in blocks if b.startswith(f"CRIMINAL_RECORD  [{first}:{first + 2}]"))
    assert "score       0.30   (rule: warn at >= 0.50, from entities.CRIMINAL_RECORD)" in mention
    assert "context     none found within 20 characters before or 8 after (looks for: 查詢" in mention
    assert "outcome     below the rule's minimum score (0.30 < 0.50)" in mention
    looked_up = next(b for b in blocks if b.startswith(f"CRIMINAL_RECORD  [{second}:{second + 2}]"))
    assert "context     '查詢' raised the score from 0.30 to 0.65" in looked_up
    assert "outcome     acted on" in looked_up
    phone = next(b for b in blocks if b.startswith("PHONE_NUMBER"))
    assert "allow-list  listed" in phone and "outcome     on the allow-list" in phone
    assert "decision: warn" in out


def test_explain_json_lists_every_candidate_with_its_outcome(tmp_path: Path) -> None:
    policy = write(tmp_path, r"""
        extends: default
        entities:
          TW_UBN: {action: redact}
        recognizers:
          - name: ubn_yaml
            supported_entity: TW_UBN
            patterns: [{name: ubn, regex: '(?<!\d)\d{8}(?!\d)', score: 0.3}]
            validator: tw_ubn
    """)
    text = "統編38591723；承辦人林育賢"
    done = run(["explain", "--policy", str(policy), "--json", text])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["decision"] == "redact" and report["tier"] == "external"
    outcomes = {(c["entity_type"], c["value"], c["outcome"]) for c in report["candidates"]}
    assert ("TW_UBN", "38591723", "rejected_by_validator") in outcomes
    assert ("PERSON", "林育賢", "acted") in outcomes
    person = next(c for c in report["candidates"] if c["entity_type"] == "PERSON")
    assert person["rule"] == {"action": "redact", "min_score": 0.5, "guideline_point": 4,
                              "source": "entities.PERSON"}
    assert person["context_word"] == "承辦人" and person["allow_listed"] is False
    start = text.index("林育賢")
    assert report["findings"] == [{"entity_type": "PERSON", "start": start, "end": start + 3,
                                   "score": person["score"]}]


def test_explain_tier_outcome_for_an_onprem_destination(tmp_path: Path) -> None:
    policy = write(tmp_path, """
        extends: default
        services:
          - {name: agency-llm, hosts: [llm.agency.example], api: openai, tier: approved_onprem}
    """)
    done = run(["explain", "--policy", str(policy), "--destination", "llm.agency.example", "--json",
                "電話0936-218-457"])
    [phone] = json.loads(done.stdout)["candidates"]
    assert phone["outcome"] == "allowed_by_tier"
    assert phone["rule"]["source"] == "tiers.approved_onprem.entities.PHONE_NUMBER"


# ---------------------------------------------------------------- policy test

def test_policy_test_passes_on_the_bundled_policies() -> None:
    done = run(["policy", "test", str(DEFAULT_POLICY), str(SENSITIVE)])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    oks = [line for line in lines if line.startswith("  ok  ")]
    assert len(oks) == len(load_policy().examples) + len(load_policy(SENSITIVE).examples)
    assert not any("FAIL" in line for line in lines)
    assert f"{DEFAULT_POLICY}:" in oks[0]                       # file:line of the case


def test_policy_test_fails_on_a_wrong_expectation_with_a_diff(tmp_path: Path) -> None:
    policy = write(tmp_path, """\
        extends: default
        examples:
          - note: wrong on purpose
            text: 承辦人林育賢，電話0936-218-457
            expect_decision: block
            expect_entities: [PHONE_NUMBER, TW_NATIONAL_ID]
          - note: right
            text: 今天天氣很好。
            expect_decision: allow
            expect_entities: []
    """)
    done = run(["policy", "test", str(policy)])
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert f"  FAIL  {policy}:3  wrong on purpose" in out
    assert f"  ok    {policy}:7  right" in out
    assert "decision  expected block, got redact" in out
    assert "missing:    TW_NATIONAL_ID" in out
    assert "unexpected: PERSON" in out
    assert "承辦人⟦PERSON 林育賢⟧，電話⟦PHONE_NUMBER 0936-218-457⟧" in out   # spans marked in the text
    assert "1 passed, 1 failed" in out


def test_policy_test_expect_allowed_diff(tmp_path: Path) -> None:
    policy = write(tmp_path, """\
        extends: default
        examples:
          - text: 統一編號38591722
            expect_decision: allow
            expect_allowed: [PHONE_NUMBER]
    """)
    done = run(["policy", "test", str(policy)])
    assert done.returncode == 1
    assert "allowed   missing:    PHONE_NUMBER" in done.stdout
    assert "unexpected: TW_UBN" in done.stdout
    assert "⟦TW_UBN(allowed) 38591722⟧" in done.stdout


def test_policy_test_bad_policy_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "extends: default\nexamples:\n  - {text: x, expect_decision: maybe}\n", "bad.yaml")
    done = run(["policy", "test", str(DEFAULT_POLICY), str(bad)])
    assert done.returncode == 2
    assert f"{bad}:3" in done.stderr and "maybe" in done.stderr
    assert "  ok  " in done.stdout                               # the good file was still tested


# ---------------------------------------------------------------- policy diff

def corpus_records(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_policy_diff_reports_a_raised_threshold_on_the_sample_corpus(tmp_path: Path) -> None:
    strict = write(tmp_path, """\
        extends: default
        name: person-strict
        entities:
          PERSON: {action: redact, min_score: 0.99, guideline_point: 4}
    """)
    done = run(["policy", "diff", str(DEFAULT_POLICY), str(strict), "--corpus", str(SAMPLE_CORPUS),
                "--examples", "2", "--json"])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    # The same comparison computed here, independently: scan the corpus with both policies.
    old, new = Engine(load_policy()), Engine(load_policy(strict))
    records = corpus_records(SAMPLE_CORPUS)
    matrix: Counter[tuple[str, str]] = Counter()
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    changed = 0
    for record in records:
        a, b = old.inspect(record["text"]), new.inspect(record["text"])
        spans_a = {(f.entity_type, f.start, f.end) for f in a.findings}
        spans_b = {(f.entity_type, f.start, f.end) for f in b.findings}
        if a.decision is not b.decision:
            matrix[(a.decision.value, b.decision.value)] += 1
        added.update(t for t, _, _ in spans_b - spans_a)
        removed.update(t for t, _, _ in spans_a - spans_b)
        changed += a.decision is not b.decision or spans_a != spans_b

    assert report["records"] == len(records)
    assert report["records_changed"] == changed
    assert {(c["from"], c["to"]): c["count"] for c in report["decision_changes"]} == dict(matrix)
    assert {t: c["removed"] for t, c in report["findings"].items() if c["removed"]} == dict(removed)
    assert {t: c["added"] for t, c in report["findings"].items() if c["added"]} == dict(added)
    assert set(removed) == {"PERSON"} and not added and matrix     # what a raised PERSON threshold does
    for change in report["decision_changes"] + report["finding_changes"]:
        assert 1 <= len(change["examples"]) <= 2

    # The text report says the same, and never prints a detected value.
    text = run(["policy", "diff", str(DEFAULT_POLICY), str(strict), "--corpus", str(SAMPLE_CORPUS)])
    assert text.returncode == 0, text.stderr
    for (before, after), count in matrix.items():
        assert f"  {before} -> {after}" in text.stdout and str(count) in text.stdout
    assert f"PERSON{'0':>31}{removed['PERSON']:>9}" in text.stdout
    values = {e["text"] for r in records for e in r["entities"]}
    for output in (text.stdout, done.stdout):
        leaked = [v for v in values if v in output]
        assert leaked == []


def test_policy_diff_masks_examples_and_honours_destination(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
        {"id": "a", "text": "承辦人林育賢，身分證F225837467", "extra": 1},
        {"id": "b", "text": "承辦人林育賢，身分證F225837467", "destination": "llm.agency.example"},
        {"id": "c", "text": "今天天氣很好。"},
    ]), encoding="utf-8")
    old = write(tmp_path, """
        extends: default
        services:
          - {name: agency-llm, hosts: [llm.agency.example], api: openai, tier: approved_onprem}
    """, "old.yaml")
    new = write(tmp_path, """
        extends: old.yaml
        entities:
          TW_NATIONAL_ID: {action: block}
    """, "new.yaml")
    done = run(["policy", "diff", str(old), str(new), "--corpus", str(corpus), "--json"])
    report = json.loads(done.stdout)
    assert report["records"] == 3 and report["records_changed"] == 1        # b goes on-prem: allowed
    [change] = report["decision_changes"]
    assert (change["from"], change["to"], change["count"]) == ("redact", "block", 1)
    [example] = change["examples"]
    assert example["id"] == "a"
    assert "F225837467" not in done.stdout and "林育賢" not in done.stdout
    assert example["text"] == "承辦人林○賢，身分證F22*****67"


def test_policy_diff_reports_bad_corpus_lines(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "x"}\nnot json\n', encoding="utf-8")
    done = run(["policy", "diff", str(DEFAULT_POLICY), str(DEFAULT_POLICY), "--corpus", str(corpus)])
    assert done.returncode == 1
    assert f"{corpus}:2" in done.stderr
    assert "1 records, 0 changed" in done.stdout and "no record changes" in done.stdout
