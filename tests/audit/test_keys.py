from __future__ import annotations

import base64
from pathlib import Path

import pytest

from guard.audit.keys import AuditKeyError, load_keys, new_key, parse_keys


def test_a_key_file_may_hold_older_keys_after_the_current_one(tmp_path: Path) -> None:
    current, older = new_key(), new_key()
    path = tmp_path / "audit.key"
    path.write_text(f"# rotated 2026-11\n{current}\n{older}\n")
    keys = load_keys(str(path))
    assert keys is not None and len(keys.keys) == 2
    assert keys.current.master == base64.b64decode(current)
    assert keys.by_id(keys.keys[1].key_id) is keys.keys[1]


def test_the_environment_variable_is_used_without_a_file() -> None:
    keys = load_keys(None, {"GUARD_AUDIT_KEY": new_key()})
    assert keys is not None and len(keys.keys) == 1
    assert load_keys(None, {}) is None


@pytest.mark.parametrize(("text", "problem"), [
    ("not base64!!", "line 1 is not base64"),
    (base64.b64encode(b"short").decode(), "line 1 is 5 bytes"),
    ("# only a comment\n", "no key found"),
])
def test_bad_keys_are_named_by_line_never_echoed(text: str, problem: str) -> None:
    with pytest.raises(AuditKeyError) as caught:
        parse_keys(text, "/etc/guard/audit.key")
    assert problem in str(caught.value) and "/etc/guard/audit.key" in str(caught.value)
    assert text.strip() not in str(caught.value) or text.startswith("#")


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AuditKeyError, match="cannot read the audit key file"):
        load_keys(str(tmp_path / "absent.key"))


def test_derived_keys_differ_per_purpose() -> None:
    key = parse_keys(new_key(), "k").current
    assert len({key.evidence_key, key.chain_key, key.master}) == 3
