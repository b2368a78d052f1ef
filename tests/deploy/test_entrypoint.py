"""What the image runs, run here: the entrypoint, configuration from the environment only, the health
check command, and the build-time preparation of jieba's cache."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY
from tests.e2e.helpers import (
    WORKERS_UP,
    assert_redacted_upstream,
    free_port,
    nonce,
    parse_http_response,
    pii_prompt,
    write_policy,
)
from tests.e2e.upstream import UpstreamServer, make_self_signed_cert

ENTRYPOINT = DEPLOY / "entrypoint.sh"
HEALTHCHECK = DEPLOY / "healthcheck.py"
VENV_BIN = Path(sys.executable).parent  # `guard` is found on PATH, as in the image


def entrypoint(*args: str, env: dict[str, str] | None = None, print_only: bool = True,
               timeout: float = 30) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", **(env or {})}
    if print_only:
        environ["GUARD_ENTRYPOINT_PRINT"] = "1"
    return subprocess.run(["/bin/sh", str(ENTRYPOINT), *args], env=environ, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.parametrize(("args", "command"), [
    ((), "guard proxy"),
    (("proxy",), "guard proxy"),
    (("--listen-port", "3128"), "guard proxy --listen-port 3128"),
    (("review", "--secure-cookies"), "guard review --secure-cookies"),
    (("audit", "verify"), "guard audit verify"),
    (("users", "add", "alice", "--role", "reviewer", "--password-stdin"),
     "guard users add alice --role reviewer --password-stdin"),
    (("pac", "--proxy", "guard:3128"), "guard pac --proxy guard:3128"),
    (("sh", "-c", "id"), "sh -c id"),                   # anything else runs as given
])
def test_entrypoint_chooses_the_command(args: tuple[str, ...], command: str) -> None:
    done = entrypoint(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout == command + "\n"


def test_entrypoint_reads_the_database_password_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "postgres-password"
    secret.write_text("s3cret\n")  # a trailing newline, as `echo` leaves it
    done = entrypoint("sh", "-c", 'printf "[%s]" "$PGPASSWORD"', env={"PGPASSWORD_FILE": str(secret)},
                      print_only=False)
    assert done.stdout == "[s3cret]"


def test_entrypoint_refuses_an_unreadable_password_file(tmp_path: Path) -> None:
    done = entrypoint(env={"PGPASSWORD_FILE": str(tmp_path / "absent")}, print_only=False)
    assert done.returncode == 2 and "PGPASSWORD_FILE" in done.stderr


def test_the_settings_the_environment_amounts_to() -> None:
    """`proxy --print-options` through the entrypoint: the image's variables become guard's options."""
    done = entrypoint("proxy", "--print-options", print_only=False, env={
        "GUARD_LISTEN_HOST": "0.0.0.0", "GUARD_LISTEN_PORT": "8080", "GUARD_OPS_LISTEN": "0.0.0.0:9100",
        "GUARD_CONFDIR": "/var/lib/guard/mitmproxy", "GUARD_AUDIT_DB": "postgresql://guard:pw@db/guard",
        "GUARD_OPT_AUDIT_JOURNAL": "/var/lib/guard/journal.jsonl", "GUARD_OPT_WORKERS": "2"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "--listen-host", "0.0.0.0", "--listen-port", "8080", "--set", "flow_detail=0",
        "--set", "connection_strategy=lazy", "--set", "confdir=/var/lib/guard/mitmproxy",
        "--set", "guard_audit_db=postgresql://guard:***@db/guard", "--set", "guard_ops_listen=0.0.0.0:9100",
        "--set", "guard_audit_journal=/var/lib/guard/journal.jsonl", "--set", "guard_workers=2"]


# ---------------------------------------------------------------- a proxy started the way the image starts it

@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamServer]:
    server = UpstreamServer(*make_self_signed_cert(tmp_path_factory.mktemp("upstream-cert"))).start()
    yield server
    server.stop()


def healthcheck(*args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run([sys.executable, str(HEALTHCHECK), *args], env={**os.environ, **(env or {})},
                          capture_output=True, timeout=30, check=False).returncode


def image_environment(tmp_path: Path, port: int, ops_port: int) -> dict[str, str]:
    """What deploy/Dockerfile sets, with this test's ports and directories."""
    return {"GUARD_LISTEN_HOST": "127.0.0.1", "GUARD_LISTEN_PORT": str(port),
            "GUARD_OPS_LISTEN": f"0.0.0.0:{ops_port}", "GUARD_CONFDIR": str(tmp_path / "mitmproxy"),
            "GUARD_AUDIT_DB": f"sqlite:///{tmp_path / 'audit.db'}",
            "GUARD_OPT_AUDIT_JOURNAL": str(tmp_path / "journal.jsonl"), "HOME": str(tmp_path),
            "PYTHONUNBUFFERED": "1"}  # log lines reach the log as they happen


@contextlib.contextmanager
def container(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The entrypoint with no arguments, as `docker run IMAGE` starts it; ready when /healthz answers."""
    log = tmp_path / "proxy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["/bin/sh", str(ENTRYPOINT)], cwd=tmp_path, stdout=out,
                                   stderr=subprocess.STDOUT, env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", **env})
    try:
        deadline = time.monotonic() + 120
        while WORKERS_UP not in log.read_text(errors="replace") or healthcheck(env=env) != 0:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the proxy did not come up"
            time.sleep(0.2)
        yield process, log
        process.send_signal(signal.SIGTERM)  # exec'd: the signal reaches guard itself, as PID 1 would
        assert process.wait(timeout=30) == 0
        assert healthcheck(env=env) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_container_start_configured_by_environment_only(tmp_path: Path, upstream: UpstreamServer) -> None:
    port, ops_port = free_port(), free_port()
    env = {**image_environment(tmp_path, port, ops_port),
           "GUARD_POLICY": str(write_policy(tmp_path / "policy.yaml", {"stand-in": ("openai", upstream)})),
           "GUARD_OPT_WORKERS": "1", "GUARD_MITMPROXY_SSL_INSECURE": "true"}
    with container(tmp_path, env):
        assert healthcheck(f"http://127.0.0.1:{ops_port}/readyz") == 0
        tag = nonce()
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": pii_prompt(tag)}]},
                          ensure_ascii=False).encode()
        done = subprocess.run(
            ["curl", "--silent", "--include", "--proxy", f"http://127.0.0.1:{port}", "--noproxy", "",
             "--cacert", str(tmp_path / "mitmproxy" / "mitmproxy-ca-cert.pem"), "--max-time", "30",
             "--header", "content-type: application/json", "--data-binary", "@-",
             f"{upstream.base_url}/v1/chat/completions"],
            input=body, capture_output=True, timeout=60, check=False)
        assert parse_http_response(done.stdout).status == 200
        assert_redacted_upstream(upstream, tag)
        assert (tmp_path / "audit.db").exists()


def test_a_bare_start_loads_the_bundled_policy_and_the_key(tmp_path: Path) -> None:
    """`docker run IMAGE` with nothing but the image's variables: the bundled policy, the default
    workers and GUARD_AUDIT_KEY all apply, though no flag or option names them."""
    port, ops_port = free_port(), free_port()
    key = subprocess.run([str(VENV_BIN / "guard"), "audit", "keygen"], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    env = {**image_environment(tmp_path, port, ops_port), "GUARD_AUDIT_KEY": key}
    with container(tmp_path, env) as (_, log):
        assert healthcheck(f"http://127.0.0.1:{ops_port}/readyz") == 0
        said = log.read_text(errors="replace")
        assert "guard: policy default" in said and "2 inspection workers" in said
        assert "evidence kept encrypted" in said


def test_the_review_console_through_the_entrypoint(tmp_path: Path) -> None:
    port = free_port()
    env = {"GUARD_AUDIT_DB": f"sqlite:///{tmp_path / 'audit.db'}", "GUARD_REVIEW_LISTEN_HOST": "127.0.0.1",
           "GUARD_REVIEW_LISTEN_PORT": str(port)}
    process = subprocess.Popen(["/bin/sh", str(ENTRYPOINT), "review"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", **env})
    try:
        deadline = time.monotonic() + 60
        while healthcheck(f"http://127.0.0.1:{port}/login") != 0:
            assert process.poll() is None and time.monotonic() < deadline, "the console did not come up"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(("ops_listen", "url"), [
    ("0.0.0.0:9100", "http://127.0.0.1:9100/healthz"),
    ("127.0.0.1:9200", "http://127.0.0.1:9200/healthz"),
    ("[::]:9100", "http://[::1]:9100/healthz"),
    ("10.1.2.3:9100", "http://10.1.2.3:9100/healthz"),
])
def test_healthcheck_url_from_the_ops_address(ops_listen: str, url: str) -> None:
    sys.path.insert(0, str(DEPLOY))
    try:
        from healthcheck import default_url  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DEPLOY))
    assert default_url({"GUARD_OPS_LISTEN": ops_listen}) == url


# ---------------------------------------------------------------- the image's build-time preparation

def test_jieba_cache_is_prepared_once_then_only_read(tmp_path: Path) -> None:
    """The Dockerfile's warm-up writes the cache to GUARD_JIEBA_CACHE_DIR; later starts load it."""
    env = {**os.environ, "GUARD_JIEBA_CACHE_DIR": str(tmp_path)}
    command = [str(VENV_BIN / "guard"), "explain", "報案人王小明（身分證A123456789）電話0912345678"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
    cache = tmp_path / "guard-jieba-words.npz"
    assert cache.stat().st_size > 1_000_000 and "PERSON" in first.stdout
    written = cache.stat().st_mtime_ns
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert cache.stat().st_mtime_ns == written, "the prepared cache was rebuilt instead of loaded"
    assert second.stdout == first.stdout
