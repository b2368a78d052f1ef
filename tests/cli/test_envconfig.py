"""Configuration from environment variables: flags win, then GUARD_* variables, then the defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from guard.cli import build_parser, main, printable_arguments, proxy_arguments
from guard.envconfig import ConfigError, env_options

REPO = Path(__file__).resolve().parents[2]
POLICY = str(REPO / "policies" / "default.yaml")


def proxy_argv(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], flags: list[str]) -> list[str]:
    """``guard proxy FLAGS`` under ``environ``: the mitmdump command line it would run."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["proxy", *flags])
    return proxy_arguments(args)


def sets(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, item in enumerate(argv) if item == "--set"]


@pytest.mark.parametrize(("environ", "flags", "present", "absent"), [
    # named variables
    ({"GUARD_LISTEN_HOST": "0.0.0.0", "GUARD_LISTEN_PORT": "3128"}, [],
     ["--listen-host 0.0.0.0", "--listen-port 3128"], []),
    ({"GUARD_AUDIT_DB": "postgresql://guard@db/guard", "GUARD_OPS_LISTEN": "0.0.0.0:9100",
      "GUARD_CONFDIR": "/var/lib/guard/mitmproxy", "GUARD_AUDIT_KEY_FILE": "/run/secrets/audit.key"}, [],
     ["guard_audit_db=postgresql://guard@db/guard", "guard_ops_listen=0.0.0.0:9100",
      "confdir=/var/lib/guard/mitmproxy", "guard_audit_key_file=/run/secrets/audit.key"], []),
    ({"GUARD_POLICY": POLICY}, [], [f"guard_policy={POLICY}"], []),
    # any other option
    ({"GUARD_OPT_WORKERS": "4", "GUARD_OPT_BODY_LIMIT": "32m", "GUARD_OPT_DRAIN_SECONDS": "25"}, [],
     ["guard_workers=4", "guard_body_limit=32m", "guard_drain_seconds=25"], []),
    ({"GUARD_MITMPROXY_MODE": "upstream:http://gateway:3128"}, [], ["mode=upstream:http://gateway:3128"], []),
    # empty counts as unset
    ({"GUARD_LISTEN_PORT": "", "GUARD_OPT_WORKERS": " "}, [], ["--listen-port 8080"], ["guard_workers="]),
    # a flag wins over the environment
    ({"GUARD_LISTEN_PORT": "3128"}, ["--listen-port", "9000"], ["--listen-port 9000"], ["3128"]),
    ({"GUARD_AUDIT_DB": "sqlite:///env.db"}, ["--audit-db", "sqlite:///flag.db"],
     ["guard_audit_db=sqlite:///flag.db"], ["env.db"]),
    ({"GUARD_OPT_WORKERS": "4"}, ["--set", "guard_workers=1"], ["guard_workers=1"], ["guard_workers=4"]),
    ({"GUARD_MITMPROXY_IGNORE_HOSTS": "a"}, ["--set", "ignore_hosts=b"],
     ["ignore_hosts=b"], ["ignore_hosts=a"]),
])
def test_proxy_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str],
                                                  flags: list[str], present: list[str],
                                                  absent: list[str]) -> None:
    argv = proxy_argv(monkeypatch, environ, flags)
    line = " ".join(argv)
    for part in present:
        assert part in line
    for part in absent:
        assert part not in line


@pytest.mark.parametrize(("environ", "message"), [
    ({"GUARD_LISTEN_PORT": "http"}, "GUARD_LISTEN_PORT='http': not a port number"),
    ({"GUARD_LISTEN_PORT": "70000"}, "GUARD_LISTEN_PORT='70000': not a port number"),
    ({"GUARD_REVIEW_LISTEN_PORT": "-1"}, "GUARD_REVIEW_LISTEN_PORT='-1': not a port number"),
    ({"GUARD_OPT_AUDIT_DB": "sqlite:///x.db"}, "GUARD_OPT_AUDIT_DB: set GUARD_AUDIT_DB instead"),
    ({"GUARD_OPT_POLICY": "p.yaml"}, "GUARD_OPT_POLICY: set GUARD_POLICY instead"),
    ({"GUARD_MITMPROXY_LISTEN_PORT": "1"}, "GUARD_MITMPROXY_LISTEN_PORT: set GUARD_LISTEN_PORT instead"),
    ({"GUARD_OPT_": "1"}, "GUARD_OPT_: no option name after the prefix"),
])
def test_a_bad_variable_stops_start_up_naming_it(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str],
                                                 environ: dict[str, str], message: str) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["proxy", "--print-options"]) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_option_stops_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """mitmproxy refuses an option nobody declared, so a misspelt GUARD_OPT_ is not silently ignored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GUARD_OPT_WORKRES", "4")
    monkeypatch.setenv("GUARD_CONFDIR", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        main(["proxy", "--listen-port", "0"])
    assert exited.value.code != 0
    assert "guard_workres" in capsys.readouterr().err


def test_env_options_ignore_other_variables() -> None:
    assert env_options({"GUARD_AUDIT_KEY": "k", "HOME": "/root", "GUARD_OPT_NODE": "node-a"}) == [
        ("guard_node", "node-a")]
    with pytest.raises(ConfigError):
        env_options({"GUARD_MITMPROXY_": "x"})


def test_print_options_hides_passwords(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GUARD_AUDIT_DB", "postgresql://guard:s3cret@db:5432/guard")
    monkeypatch.setenv("GUARD_MITMPROXY_PROXYAUTH", "alice:wonderland")
    assert main(["proxy", "--print-options"]) == 0
    printed = capsys.readouterr().out
    assert "guard_audit_db=postgresql://guard:***@db:5432/guard" in printed
    assert "proxyauth=***" in printed
    assert "s3cret" not in printed and "wonderland" not in printed
    assert printable_arguments(["--set", "upstream_auth=u:p"]) == ["--set", "upstream_auth=***"]


def _subcommand(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str],
                argv: list[str]) -> argparse.Namespace:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return build_parser().parse_args(argv)


def test_review_reads_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    args = _subcommand(monkeypatch, {"GUARD_AUDIT_DB": "postgresql://guard@db/guard",
                                     "GUARD_AUDIT_KEY_FILE": "/run/secrets/audit.key",
                                     "GUARD_REVIEW_LISTEN_HOST": "0.0.0.0",
                                     "GUARD_REVIEW_LISTEN_PORT": "8443"},
                       ["review"])
    assert (args.audit_db, args.audit_key_file, args.listen_host, args.listen_port) == (
        "postgresql://guard@db/guard", "/run/secrets/audit.key", "0.0.0.0", 8443)
    flagged = build_parser().parse_args(["review", "--listen-port", "9000", "--audit-db", "sqlite:///r.db"])
    assert (flagged.listen_port, flagged.audit_db) == (9000, "sqlite:///r.db")


def test_audit_commands_read_the_store_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    args = _subcommand(monkeypatch, {"GUARD_AUDIT_DB": "postgresql://guard@db/guard"}, ["audit", "verify"])
    assert args.audit_db == "postgresql://guard@db/guard"
