"""The policy author's tools tell the truth: every check the proxy runs, every problem at once with its
line, near-miss hints, bundled policies by name, and help for every command and option."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import textwrap
from pathlib import Path

import pytest

from guard.cli import build_parser
from guard.policy import BUNDLED_DIR, PolicyError, load_policy
from tests.cli.test_scan_contract import run

# One file with four problems of four kinds; each must be reported with its own line.
FOUR_PROBLEMS = """\
    extends: default
    allowlist:
      PHONE_NUMBER: ["1999"]
    entities:
      PERSONS: {action: redact}
      TW_NATIONAL_ID: {acton: redact}
    services:
      - {name: agency, hosts: [llm.agency.example], api: opnai}
"""
EXPECTED = [
    (2, "allowlist: unknown key 'allowlist' (did you mean 'allow_list'?)"),
    (5, "entities.PERSONS: unknown entity type 'PERSONS' (did you mean 'PERSON'?)"),
    (6, "entities.TW_NATIONAL_ID.acton: unknown key 'acton' (did you mean 'action'?)"),
    (8, "services.agency.api: unknown api 'opnai' (did you mean 'openai'?); valid: anthropic,"),
]


def write(tmp_path: Path, body: str, name: str = "agency.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_validate_reports_every_problem_with_its_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path, FOUR_PROBLEMS)
    good = write(tmp_path, "extends: default\n", "good.yaml")
    done = run(["policy", "validate", str(bad), str(good)])
    assert done.returncode == 2
    errors = done.stderr.splitlines()
    assert len(errors) == len(EXPECTED), done.stderr
    for line, (number, message) in zip(errors, EXPECTED, strict=True):
        assert line.startswith(f"guard: policy error: {bad}:{number}: {message}"), line
    assert f"{good}: ok" in done.stdout  # the next file is still checked


@pytest.mark.parametrize("command", [["policy", "test"], ["scan", "--policy"], ["explain", "--policy"]])
def test_every_tool_refuses_what_the_proxy_refuses(tmp_path: Path, command: list[str]) -> None:
    bad = write(tmp_path, "extends: default\nservices:\n  - {name: a, hosts: [a.example], api: opnai}\n")
    done = run([*command, str(bad)], stdin="hello")
    assert done.returncode == 2
    assert f"{bad}:3: services.a.api: unknown api 'opnai'" in done.stderr


def test_the_proxy_refuses_it_before_starting(tmp_path: Path) -> None:
    bad = write(tmp_path, "extends: default\nservices:\n  - {name: a, hosts: [a.example], api: opnai}\n")
    done = run(["proxy", "--policy", str(bad), "--print-options"])
    assert done.returncode == 2 and f"{bad}:3: services.a.api" in done.stderr


def test_every_format_the_proxy_knows_is_accepted(tmp_path: Path) -> None:
    from guard.formats import FORMATS

    services = "".join(f"  - {{name: s{i}, hosts: [h{i}.example], api: {api}}}\n"
                       for i, api in enumerate(sorted(FORMATS)))
    policy = load_policy(write(tmp_path, "extends: default\nservices:\n" + services))
    assert {s.api for s in policy.services} >= set(FORMATS)


def test_the_error_keeps_every_problem(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, FOUR_PROBLEMS))
    assert [p.line for p in caught.value.problems] == [line for line, _ in EXPECTED]
    assert caught.value.line == 2  # the first, for callers that show one


@pytest.mark.parametrize("args", [
    ["policy", "validate", "default", "sensitive-cases"],
    ["policy", "test", "default"],
    ["explain", "--policy", "default", "王小明的電話是0912-345-678"],
    ["scan", "--policy", "sensitive-cases", "--jsonl", "-"],
])
def test_bundled_policies_by_name_everywhere(args: list[str]) -> None:
    done = run(args, stdin=json.dumps({"id": "a", "text": "請查詢該員前科"}) + "\n")
    assert done.returncode == 0, done.stderr


def test_policy_diff_takes_bundled_names(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "請查詢該員前科紀錄"}, ensure_ascii=False) + "\n",
                      encoding="utf-8")
    done = run(["policy", "diff", "default", "sensitive-cases", "--corpus", str(corpus), "--json"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records_changed"] == 1


def test_an_unknown_bundled_name_lists_the_names() -> None:
    done = run(["explain", "--policy", "defualt", "x"])
    assert done.returncode == 2 and "no such policy file" in done.stderr and "default" in done.stderr


@pytest.mark.parametrize(("body", "name"), [
    ("extends: default\n", "agency"),                      # a child without a name is named after its file
    ("extends: default\nname: police\n", "police"),
    ("entities: {}\n", "agency"),
])
def test_a_policy_is_named_after_its_file_unless_it_names_itself(tmp_path: Path, body: str,
                                                                 name: str) -> None:
    assert load_policy(write(tmp_path, body)).name == name


def test_display_names_from_the_policy_and_its_recognizers(tmp_path: Path) -> None:
    path = write(tmp_path, r"""
        extends: default
        display_names: {TW_CASE_NUMBER: 案號}
        entities:
          TW_CASE_NUMBER: {action: redact}
          TW_PERMIT: {action: redact}
        recognizers:
          - {name: case, supported_entity: TW_CASE_NUMBER,
             patterns: [{name: c, regex: '\d+字第\d+號', score: 0.8}]}
          - {name: permit, supported_entity: TW_PERMIT, display_name: 許可證號,
             patterns: [{name: p, regex: 'P\d{6}', score: 0.8}]}
    """)
    policy = load_policy(path)
    assert policy.display_name("TW_CASE_NUMBER") == "案號"
    assert policy.display_name("TW_PERMIT") == "許可證號"
    assert policy.display_name("PERSON") == "姓名"          # built-in


def test_validate_notes_a_declared_type_without_a_display_name(tmp_path: Path) -> None:
    path = write(tmp_path, r"""
        extends: default
        entities: {TW_PERMIT: {action: redact}}
        recognizers:
          - {name: permit, supported_entity: TW_PERMIT, patterns: [{name: p, regex: 'P\d{6}', score: 0.8}]}
    """)
    done = run(["policy", "validate", str(path)])
    assert done.returncode == 0
    assert "TW_PERMIT has no display_name" in done.stdout


def test_explain_says_blocked_for_a_block_decision() -> None:
    done = run(["explain", "〔機密〕\n主旨：王小明的身分證字號 A123456789"])
    assert done.returncode == 0, done.stderr
    assert "decision: block" in done.stdout
    assert "blocked: nothing is sent to the AI service" in done.stdout and "redacted:" not in done.stdout


def test_explain_shows_the_redacted_text_for_a_redact_decision() -> None:
    done = run(["explain", "王小明的身分證字號 A123456789"])
    assert "decision: redact" in done.stdout and "redacted: " in done.stdout


def test_version() -> None:
    done = run(["--version"])
    assert done.returncode == 0
    assert done.stdout.strip() == f"guard {importlib.metadata.version('guard')}"


def _every_parser(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("guard",)):  # type: ignore[no-untyped-def]
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{' '.join(path)} {name} has no help"
                yield from _every_parser(sub, (*path, name))


def test_every_command_and_option_has_help_without_markup() -> None:
    for path, parser in _every_parser(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{' '.join(path)} {action.option_strings or action.dest} has no help"
        text = parser.format_help()
        assert "``" not in text and ":class:" not in text, (path, text)


def test_bundled_names_are_the_bundled_files() -> None:
    from guard.policy import bundled_policies

    assert set(bundled_policies()) == {p.stem for p in BUNDLED_DIR.glob("*.yaml")} >= {"default"}
