"""``guard scan`` and ``guard explain`` as CONTRACT.md specifies them, run as the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GUARD = [sys.executable, "-m", "guard.cli"]


def run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(GUARD + args, input=stdin, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"}, check=False)


RECORDS = [
    {"id": "r1", "text": "報案人身分證字號Ａ１２３４５６７８９，電話 0912 345 678。", "extra": "ignored"},
    {"id": "r2", "text": "請問公務機密和個人資料保護的差別是什麼？"},
    {"id": "r3", "text": "請潤飾：\n〔密〕\n主旨：加強勤務。"},
]


def test_scan_jsonl_contract(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    done = run(["scan", "--jsonl", str(source)])
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["r1", "r2", "r3"]                 # one line per input, in order
    assert set(lines[0]) == {"id", "decision", "findings", "redacted_text"}
    first = lines[0]
    assert first["decision"] == "redact"
    text = RECORDS[0]["text"]
    spans = {f["entity_type"]: text[f["start"]:f["end"]] for f in first["findings"]}
    assert spans["TW_NATIONAL_ID"] == "Ａ１２３４５６７８９"                       # offsets into the original
    assert spans["PHONE_NUMBER"] == "0912 345 678"
    assert all(set(f) == {"entity_type", "start", "end", "score"} for f in first["findings"])
    assert "Ａ１２３" not in first["redacted_text"] and "0912" not in first["redacted_text"]
    assert lines[1] == {"id": "r2", "decision": "allow", "findings": [], "redacted_text": RECORDS[1]["text"]}
    assert lines[2]["decision"] == "block"


def test_scan_reads_stdin_with_dash() -> None:
    done = run(["scan", "--jsonl", "-"], stdin=json.dumps({"id": 7, "text": "A123456789"}) + "\n")
    assert json.loads(done.stdout)["id"] == 7


def test_scan_plain_text_for_a_human() -> None:
    done = run(["scan"], stdin="身分證A123456789")
    assert done.returncode == 0
    assert "decision: redact" in done.stdout and "TW_NATIONAL_ID" in done.stdout


def test_bad_input_line_is_reported_and_nothing_is_lost(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "text": "A123456789"}\nnot json\n{"id": "c", "text": "ok"}\n',
                      encoding="utf-8")
    done = run(["scan", "--jsonl", str(source)])
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line.get("id") for line in lines] == ["a", None, "c"]
    assert lines[1]["line"] == 2 and "error" in lines[1]
    assert f"{source}:2" in done.stderr


def test_bad_policy_exits_non_zero_naming_the_file(tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("entities:\n  PERSON: {action: shred}\n", encoding="utf-8")
    done = run(["scan", "--policy", str(policy), "--jsonl", "-"], stdin='{"id":1,"text":"x"}\n')
    assert done.returncode == 2
    assert str(policy) in done.stderr and "shred" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(("destination", "decision"), [("api.openai.com", "redact"), (None, "redact")])
def test_destination_option(destination: str | None, decision: str) -> None:
    args = ["scan", "--jsonl", "-"] + (["--destination", destination] if destination else [])
    done = run(args, stdin=json.dumps({"id": 1, "text": "身分證A123456789"}) + "\n")
    assert json.loads(done.stdout)["decision"] == decision


def test_explain_shows_recognizer_score_context_and_rule() -> None:
    done = run(["explain", "車號ABC-1235的車主，身分證A123456789"])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "TW_LICENSE_PLATE" in out and "TW_NATIONAL_ID" in out
    assert "recognizer" in out and "score" in out and "rule: redact" in out
    assert "outcome     acted on" in out
    assert "decision: redact" in out
