"""Tables for the console's pure pieces: CSV cells, YAML strings, visible text, highlighting, locating."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ruamel.yaml import YAML

from guard.audit.masking import FoundAt, snippets
from guard.audit.store import AuditStore
from guard.review import auth
from guard.review.exports import csv_cell, yaml_string
from guard.review.render import locate, pieces, revealed_findings, visible
from tests.review.helpers import HOSTILE_PROMPT, MOBILE, NATIONAL_ID, PII_PROMPT, pii_findings


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+886912345678", "'+886912345678"), ("-1", "'-1"), ("@A1", "'@A1"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("a=1", "a=1"), ("", ""), (None, ""), (12, "12"),
    ("'quoted", "'quoted"), ("王大明", "王大明"),
])
def test_csv_cells(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


@pytest.mark.parametrize("value", [
    "02-2311-3456", "1999", "王大明", 'quote " and \\ backslash', "line\nbreak", "tab\there",
    "\u202eevil", "zero\u200bwidth", "bom\ufeff", "emoji 😀", "# not a comment", "- not a list", "key: value",
    "yes", "null", "'single'", "\x7fdel", "\x85nel", "\u2028ls",
])
def test_yaml_strings_read_back_exactly(value: str) -> None:
    text = yaml_string(value)
    assert "\n" not in text
    assert YAML(typ="safe").load(f"v: {text}  # comment\n") == {"v": value}


@pytest.mark.parametrize(("text", "html"), [
    ("<b>&'\"", "&lt;b&gt;&amp;&#39;&#34;"),
    ("a\u202eb", 'a<span class="ctl" title="不可見字元">U+202E</span>b'),
    ("a\u200bb\u2066c", 'a<span class="ctl" title="不可見字元">U+200B</span>b'
                       '<span class="ctl" title="不可見字元">U+2066</span>c'),
    ("line\nnext\ttab\r\n", "line\nnext\ttab\r\n"),
    ("<\u202e>", '&lt;<span class="ctl" title="不可見字元">U+202E</span>&gt;'),
    (None, ""),
])
def test_visible_text_is_escaped_and_shows_hidden_characters(text: str | None, html: str) -> None:
    assert str(visible(text)) == html


def test_pieces_split_text_at_findings_and_clip_overlaps() -> None:
    findings = [{"start": 0, "end": 2, "entity_type": "A", "action": "redact"},
                {"start": 1, "end": 4, "entity_type": "B", "action": "block"},
                {"start": 6, "end": 99, "entity_type": "C", "action": "warn"}]
    assert [(p.text, p.entity_type) for p in pieces("abcdefgh", findings)] == [
        ("ab", "A"), ("cd", "B"), ("ef", ""), ("gh", "C")]
    assert [(p.text, p.entity_type) for p in pieces("plain", [])] == [("plain", "")]


def _every(text: str, segment: int) -> list[FoundAt]:
    out = []
    for value, entity in ((NATIONAL_ID, "TW_NATIONAL_ID"), (MOBILE, "PHONE_NUMBER"), ("王小明", "PERSON")):
        start = text.find(value)
        while start != -1:
            out.append(FoundAt(entity, segment, start, start + len(value), 1.0, "redact"))
            start = text.find(value, start + 1)
    return out


@pytest.mark.parametrize("text", [
    PII_PROMPT,
    HOSTILE_PROMPT,
    "前言" * 40 + f" {NATIONAL_ID} " + "中段" * 40 + f" {MOBILE} " + "結尾" * 40,   # two cut windows
    f"{NATIONAL_ID}，再一次 {NATIONAL_ID}",                                          # the same value twice
])
def test_snippets_are_located_in_the_original(text: str) -> None:
    texts = ["第一段沒有個資", text]
    findings = _every(text, 1)
    found, missed = revealed_findings(texts, snippets(texts, findings))
    assert missed == 0
    assert sorted((f.segment, f.start, f.value) for f in found) == sorted(
        (1, f.start, text[f.start:f.end]) for f in findings)


def test_a_snippet_that_does_not_match_is_not_placed() -> None:
    (window,) = snippets([PII_PROMPT], pii_findings()[:1])
    assert locate(PII_PROMPT.replace("王", "李"), window) is None
    found, missed = revealed_findings([PII_PROMPT.replace("王", "李")], [window])
    assert (found, missed) == ([], 1)


def test_proposal_tokens_are_bound_to_key_session_and_event() -> None:
    key = b"k" * 32
    token = auth.sign_proposal(key, "session-1", "E1", "PHONE_NUMBER", "1999")
    assert auth.open_proposal(key, "session-1", "E1", token) == ("PHONE_NUMBER", "1999")
    for args in ((b"x" * 32, "session-1", "E1"), (key, "session-2", "E1"), (key, "session-1", "E2")):
        assert auth.open_proposal(*args, token) is None
    assert auth.open_proposal(key, "session-1", "E1", "garbage") is None


def test_throttle_forgets_old_failures(audit_url: str) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = AuditStore.open(audit_url)
    throttle = auth.Throttle(store, lambda: now[0], auth.Limits(per_address=3, window=timedelta(minutes=10)))
    for _ in range(3):
        assert not throttle.blocked("Rita", "10.0.0.1")
        throttle.failure("Rita", "10.0.0.1")
    assert throttle.blocked("rita", "10.0.0.1") and not throttle.blocked("rita", "10.0.0.2")
    now[0] += timedelta(minutes=10)
    assert not throttle.blocked("rita", "10.0.0.1")
    throttle.failure("rita", "10.0.0.1")
    throttle.success("rita", "10.0.0.1")
    assert not throttle.blocked("rita", "10.0.0.1")
    store.close()
