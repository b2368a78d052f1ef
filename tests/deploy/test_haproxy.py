"""deploy/haproxy.cfg for real: two guard proxies behind HAProxy, one of them stopped (SIGTERM) under
traffic, and no client notices. The only changes to the file are the addresses: loopback ports instead
of the Compose service names."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, tool
from tests.e2e.helpers import (
    GuardProxy,
    assert_redacted_upstream,
    free_port,
    nonce,
    parse_http_response,
    pii_prompt,
    write_policy,
)
from tests.e2e.upstream import UpstreamServer, make_self_signed_cert


def local_config(front: int, stats: int, nodes: list[tuple[int, int]]) -> str:
    """deploy/haproxy.cfg with loopback addresses: (proxy port, ops port) per replica."""
    text = (DEPLOY / "haproxy.cfg").read_text()
    text = text.replace("bind :3128", f"bind 127.0.0.1:{front}")
    text = text.replace("bind :8404", f"bind 127.0.0.1:{stats}")
    servers = "".join(f"    server proxy-{n} 127.0.0.1:{port} port {ops}\n"
                      for n, (port, ops) in enumerate(nodes, 1))
    text, count = re.subn(r"(    server proxy-\d+ proxy-\d+:8080\n)+", servers, text)
    assert count == 1, "deploy/haproxy.cfg no longer has the server lines this test replaces"
    return text


def _wait_until_all_up(stats_port: int, replicas: int, timeout: float = 60) -> None:
    """Until HAProxy's statistics (CSV) show every replica UP: before that, traffic would test startup."""
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=5) as page:
                rows = list(csv.reader(io.StringIO(page.read().decode().lstrip("# "))))
            header = rows[0]
            states = [row[header.index("status")] for row in rows[1:]
                      if row and row[0] == "guard_proxies" and row[1].startswith("proxy-")]
            if len(states) == replicas and all(state == "UP" for state in states):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"HAProxy did not see every replica up: {states}")


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamServer]:
    server = UpstreamServer(*make_self_signed_cert(tmp_path)).start()
    yield server
    server.stop()


def test_a_replica_stopped_under_traffic_loses_no_request(tmp_path: Path, upstream: UpstreamServer) -> None:
    haproxy = tool("haproxy", "Debian haproxy")
    policy = write_policy(tmp_path / "policy.yaml", {"stand-in": ("openai", upstream)})
    proxies = []
    for n in (1, 2):
        home = tmp_path / f"node-{n}"
        home.mkdir()
        options = (f"guard_ops_listen=127.0.0.1:{free_port()}", f"guard_node=node-{n}")
        proxies.append(GuardProxy(confdir=home, policy=policy, log_path=home / "proxy.log", options=options))
    balancer: subprocess.Popen[bytes] | None = None
    try:
        for proxy in proxies:
            proxy.start()
        bundle = tmp_path / "cas.pem"  # two proxies started apart have two CAs; production shares one
        bundle.write_bytes(b"".join(p.ca.read_bytes() for p in proxies))
        ops_ports = [int(dict(o.split("=", 1) for o in p.options)["guard_ops_listen"].rsplit(":", 1)[1])
                     for p in proxies]
        front = free_port()
        config = tmp_path / "haproxy.cfg"
        nodes = [(proxy.port, ops) for proxy, ops in zip(proxies, ops_ports, strict=True)]
        stats = free_port()
        config.write_text(local_config(front, stats, nodes))
        # -n: fewer connections than the file's maxconn, which needs more descriptors than a CI box allows
        balancer = subprocess.Popen([haproxy, "-db", "-n", "1000", "-f", str(config)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def chat(tag: str) -> int:
            body = json.dumps({"model": "m", "messages": [{"role": "user", "content": pii_prompt(tag)}]},
                              ensure_ascii=False).encode()
            done = subprocess.run(
                ["curl", "--silent", "--include", "--proxy", f"http://127.0.0.1:{front}", "--noproxy", "",
                 "--cacert", str(bundle), "--max-time", "30", "--header", "content-type: application/json",
                 "--data-binary", "@-", f"{upstream.base_url}/v1/chat/completions"],
                input=body, capture_output=True, timeout=60, check=False)
            return parse_http_response(done.stdout).status if done.returncode == 0 else -done.returncode

        _wait_until_all_up(stats, len(proxies))  # HAProxy's health checks (rise 2, every 2 s)
        assert chat(nonce()) == 200
        tags = [nonce() for _ in range(8)]
        assert [chat(tag) for tag in tags] == [200] * 8
        assert all(p.events() for p in proxies), "leastconn spreads new connections over both replicas"

        stopping = proxies[0].process
        assert stopping is not None
        stopping.send_signal(signal.SIGTERM)
        after = [nonce() for _ in range(8)]
        assert [chat(tag) for tag in after] == [200] * 8, "a request failed while a replica drained"
        assert stopping.wait(timeout=30) == 0
        for tag in tags + after:
            assert_redacted_upstream(upstream, tag)
    finally:
        if balancer is not None:
            balancer.terminate()
            balancer.wait(timeout=10)
        for proxy in proxies:
            proxy.stop()
