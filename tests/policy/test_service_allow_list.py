"""Allow-lists per service: a value allowed for one service is still acted on for every other."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guard.engine import Engine
from guard.policy import PolicyError, load_policy

PHONE = "0223456789"  # the agency's own help desk, say
TEXT = f"請撥打服務專線 {PHONE} 詢問"


def _policy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_a_service_allow_list_applies_to_that_service_only(tmp_path: Path) -> None:
    engine = Engine(load_policy(_policy(tmp_path, """\
        extends: default
        services:
          - name: helpdesk-llm
            hosts: ["llm.agency.example"]
            api: openai
            allow_list:
              PHONE_NUMBER: ["02-2345-6789"]
        """)))
    assert engine.inspect(TEXT, "llm.agency.example").decision.value == "allow"
    other = engine.inspect(TEXT, "api.openai.com")
    assert other.decision.value == "redact" and PHONE not in other.redacted_text
    assert engine.inspect(TEXT).decision.value == "redact"


def test_an_unknown_entity_in_a_service_allow_list_names_file_and_service(tmp_path: Path) -> None:
    path = _policy(tmp_path, """\
        extends: default
        services:
          - name: helpdesk-llm
            hosts: ["llm.agency.example"]
            allow_list:
              PHONE_NUMBERS: ["02-2345-6789"]
        """)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert str(path) in message and "PHONE_NUMBERS" in message
    assert "services.helpdesk-llm.allow_list" in message
