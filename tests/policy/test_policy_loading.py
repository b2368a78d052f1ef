"""Policy loading, ``extends`` and validation errors that name the file, line and problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from guard.policy import DEFAULT_POLICY, PolicyError, load_policy, split_host_port
from guard.verdict import ClassificationLevel, Decision


def write(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_default_policy_encodes_the_guideline() -> None:
    policy = load_policy()
    assert policy.name == "default"
    assert policy.rule_for("CLASSIFICATION_MARKER", "external").action == "block"
    assert policy.rule_for("CLASSIFICATION_MARKER", "external").guideline_point == 3
    for entity in ("TW_NATIONAL_ID", "TW_RESIDENT_ID", "TW_LICENSE_PLATE", "PERSON", "PHONE_NUMBER",
                   "EMAIL_ADDRESS"):
        assert policy.rule_for(entity, "external").action == "redact", entity
        assert policy.rule_for(entity, "approved_onprem").action == "allow", entity
    assert policy.default_action is Decision.ALLOW
    assert policy.max_classification("external") is ClassificationLevel.NONE
    assert policy.max_classification("approved_onprem") is ClassificationLevel.GENERAL


@pytest.mark.parametrize(("host", "port", "service"), [
    ("api.openai.com", 443, "openai-api"),
    ("API.OPENAI.COM", None, "openai-api"),
    ("myorg.openai.azure.com", 443, "azure-openai"),     # wildcard
    ("claude.ai", 443, "claude"),
    ("example.com", 443, None),                         # not an AI service: never opened
    ("openai.com.evil.example", 443, None),
])
def test_service_catalogue_matches_hosts(host: str, port: int | None, service: str | None) -> None:
    found = load_policy().service_for_host(host, port)
    assert (found.name if found else None) == service


def test_extends_adds_services_and_overrides_rules(tmp_path: Path) -> None:
    path = write(tmp_path, """
        extends: default
        name: agency
        version: "7"
        entities:
          PERSON: {action: warn, min_score: 0.7}
        allow_list:
          PHONE_NUMBER: ["02-2345-6789"]
        services:
          - name: agency-llm
            hosts: ["llm.agency.example", "127.0.0.1:9100"]
            api: openai
            tier: approved_onprem
    """)
    policy = load_policy(path)
    assert policy.name == "agency"
    assert policy.version.startswith("7+")
    assert policy.rule_for("PERSON", "external").action == "warn"
    assert policy.rule_for("TW_NATIONAL_ID", "external").action == "redact"   # inherited
    assert "1999" in policy.allow_list["PHONE_NUMBER"]                          # inherited, merged
    assert "0223456789" in policy.allow_list["PHONE_NUMBER"]                    # folded key
    assert policy.tier_for_destination("127.0.0.1:9100") == "approved_onprem"
    assert policy.tier_for_destination("127.0.0.1:9101") == "external"          # port must match
    assert policy.service_for_host("api.openai.com", 443) is not None            # default services kept


def test_images_rule_defaults_to_mask_and_a_child_may_block(tmp_path: Path) -> None:
    assert load_policy(None).images.personal_data == "mask"
    child = write(tmp_path, "extends: default\nimages: {personal_data: block}\n", "child.yaml")
    assert load_policy(child).images.personal_data == "block"
    grandchild = write(tmp_path, "extends: child.yaml\nname: g\n", "g.yaml")
    assert load_policy(grandchild).images.personal_data == "block"  # inherited through extends


def test_policy_version_changes_with_content(tmp_path: Path) -> None:
    first = load_policy(write(tmp_path, "extends: default\nversion: '1'\n"))
    second = load_policy(write(tmp_path, "extends: default\nversion: '1'\ndefault_action: allow\n"))
    assert first.version != second.version


def test_yaml_recognizer_is_loaded(tmp_path: Path) -> None:
    path = write(tmp_path, r"""
        extends: default
        entities:
          TW_CASE_NUMBER: {action: redact}
        recognizers:
          - name: case_number
            supported_entity: TW_CASE_NUMBER
            patterns:
              - {name: case, regex: '\d{2,3}年度?[\u4e00-\u9fff]{1,3}字第\d+號', score: 0.8}
            context: [案號]
    """)
    policy = load_policy(path)
    assert [r.name for r in policy.recognizers] == ["case_number"]


# Every way a policy can be wrong: (file body, expected line, words the message must contain).
BAD_POLICIES = [
    ("entities:\n  TW_NATIONAL_ID: {acton: redact}\n", 2,
     ["entities.TW_NATIONAL_ID", "acton", "did you mean 'action'"]),
    ("entities:\n  TW_NATIONAL_ID: {action: redcat}\n", 2, ["entities.TW_NATIONAL_ID.action", "redcat"]),
    ("entities:\n  TW_PLATE: {action: redact}\n", 2, ["unknown entity type", "TW_PLATE"]),
    ("entities:\n  PERSON: {action: redact}\n  PERSONS: {action: redact}\n", 3,
     ["entities.PERSONS", "did you mean 'PERSON'"]),
    ("allowlist:\n  PHONE_NUMBER: ['1999']\n", 1, ["unknown key 'allowlist'", "did you mean 'allow_list'"]),
    ("services:\n  - name: s\n    hosts: [x.example]\n    api: opnai\n", 4,
     ["services.s.api", "unknown api 'opnai'", "did you mean 'openai'", "generic"]),
    ("entities:\n  PERSON: {action: redact, min_score: 1.5}\n", 2, ["min_score", "less than or equal"]),
    ("recognizers:\n  - name: x\n    supported_entity: X_ID\n    patterns:\n"
     "      - {name: p, regex: '([A-Z]', score: 0.5}\n", 5, ["regex does not compile"]),
    ("recognizers:\n  - name: x\n    supported_entity: X_ID\n", 2, ["patterns or a deny_list"]),
    ("recognizers:\n  - name: x\n    supported_entity: X_ID\n    deny_list: [a]\n    validator: crc32\n",
     5, ["unknown validator", "crc32"]),
    ("tiers:\n  onprem: {max_classification: 密}\n", 2, ["unknown tier", "onprem"]),
    ("tiers:\n  approved_onprem: {max_classification: 秘密}\n", 2, ["unknown classification level"]),
    ("services:\n  - {name: s, hosts: ['https://x.example/'], api: openai}\n", 2, ["not a host"]),
    ("services:\n  - {name: s, hosts: [x.example], tier: internal}\n", 2, ["tier"]),
    ("entities: [1, 2\n", 2, ["not valid YAML"]),
    ("- just\n- a list\n", 1, ["mapping"]),
    ("extends: nowhere\n", 1, ["extends", "no such policy", "bundled policies by name: default"]),
    ("nmae: typo\n", 1, ["unknown key", "nmae", "did you mean 'name'"]),
    ("servces: []\n", 1, ["unknown key", "did you mean 'services'"]),
    ("name: x\nimages:\n  personal_data: blur\n", 3,
     ["images.personal_data", "'mask' or 'block'", "blur"]),
    ("images:\n  personal_date: block\n", 2, ["images", "unknown key 'personal_date'",
                                                "did you mean 'personal_data'"]),
    ("images: block\n", 1, ["images", "valid dictionary"]),
]


@pytest.mark.parametrize(("body", "line", "words"), BAD_POLICIES)
def test_bad_policy_names_file_line_and_problem(tmp_path: Path, body: str, line: int | None,
                                                words: list[str]) -> None:
    path = write(tmp_path, body)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    if line is not None:
        assert caught.value.line == line, message
    for word in words:
        assert word in message, (word, message)


def test_missing_file_and_cycle(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy(tmp_path / "absent.yaml")
    write(tmp_path, "extends: b.yaml\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\n", "b.yaml")
    with pytest.raises(PolicyError, match="cycle"):
        load_policy(tmp_path / "a.yaml")


@pytest.mark.parametrize(("value", "expected"), [
    ("api.openai.com", ("api.openai.com", None)),
    ("127.0.0.1:9100", ("127.0.0.1", 9100)),
    ("[::1]:8080", ("[::1]", 8080)),
    ("LLM.Agency.Example", ("llm.agency.example", None)),
])
def test_split_host_port(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(value) == expected


def test_bundled_default_is_the_file_in_policies() -> None:
    repo = Path(__file__).resolve().parents[2]
    assert DEFAULT_POLICY.resolve() == repo / "policies" / "default.yaml"
