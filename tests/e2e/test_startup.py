"""A real ``guard proxy`` from launch to traffic: refuses connections until ready (never holds them), and
writes nothing but JSON lines to stdout when it is not a terminal, mitmproxy's own log included."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.helpers import REPO, GuardProxy, nonce, post_chat, write_policy
from tests.e2e.upstream import UpstreamServer

sys.path.insert(0, str(REPO / "deploy"))

from startup_time import measure


def test_the_proxy_port_opens_only_once_the_proxy_is_ready() -> None:
    run = measure(workers=1)
    assert run.held_connections == 0, run       # no connection was accepted before /readyz said 200
    assert run.ops_s <= run.listening_s, run    # probes get an answer (503) while it starts


def test_stdout_is_json_lines_only(tmp_path: Path, openai_upstream: UpstreamServer) -> None:
    policy = write_policy(tmp_path / "policy.yaml", {"e2e-openai": ("openai", openai_upstream)})
    proxy = GuardProxy(confdir=tmp_path, policy=policy, log_path=tmp_path / "proxy.log",
                       options=("guard_policy_reload=0.3",))
    proxy.start()
    try:
        status, _ = post_chat(proxy, openai_upstream, f"身分證 A123456789，追蹤碼 {nonce()}")
        assert status == 200
        policy.write_text(policy.read_text(encoding="utf-8") + "entities: {PERSONS: {action: block}}\n",
                          encoding="utf-8")
        deadline = time.monotonic() + 60
        while "rejected" not in proxy.log():
            assert time.monotonic() < deadline, proxy.log()[-2000:]
            time.sleep(0.2)
    finally:
        proxy.stop()
    records = []
    for line in proxy.log().splitlines():  # stdout and stderr both: a clean run writes nothing else
        record = json.loads(line)
        assert isinstance(record, dict) and "time" in record and "logged_at" not in record, line
        records.append(record)
    loggers = {r.get("logger", "") for r in records}
    assert any(name.startswith("mitmproxy") for name in loggers), loggers    # mitmproxy's own lines
    assert any(r.get("event") == "prompt_redacted" for r in records)         # guard's inspection event
    rejected = [r for r in records if "rejected" in r["event"]]
    assert rejected and rejected[0]["level"] == "error" and "PERSONS" in rejected[0]["event"]


def test_a_port_in_use_is_reported_in_guards_words(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "guard.cli", "proxy", "--listen-port", str(port),
                               "--confdir", str(tmp_path), "--audit-db", f"sqlite:///{tmp_path}/a.db",
                               "--set", "guard_workers=1"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, check=False)
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert "already in use" in said.lower() and "--listen-port" in said
    assert "--mode" not in said and "regular@" not in said
