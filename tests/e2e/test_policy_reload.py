"""Hot reload under traffic: a changed policy takes over without dropping a request; a broken one is
refused and the running policy stays in force."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import MOBILE, NATIONAL_ID, GuardProxy, nonce, post_chat, write_policy
from tests.e2e.upstream import UpstreamServer

CHAT = "/v1/chat/completions"


def _write(path: Path, catalogue: dict[str, tuple[str, UpstreamServer]], version: str,
           actions: dict[str, str] | None = None) -> None:
    write_policy(path, catalogue, actions)
    path.write_text(f'name: reload-test\nversion: "{version}"\n' + path.read_text(encoding="utf-8"),
                    encoding="utf-8")


@pytest.fixture
def reloading_proxy(tmp_path: Path, catalogue: dict[str, tuple[str, UpstreamServer]]) -> Iterator[GuardProxy]:
    policy = tmp_path / "policy.yaml"
    _write(policy, catalogue, "v1")
    proxy = GuardProxy(confdir=tmp_path, policy=policy, log_path=tmp_path / "proxy.log",
                       options=("guard_policy_reload=0.3",))
    proxy.start()
    yield proxy
    proxy.stop()


def _wait_for_log(proxy: GuardProxy, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in proxy.log():
        assert time.monotonic() < deadline, f"proxy never logged {text!r}:\n{proxy.log()[-2000:]}"
        time.sleep(0.1)


def test_reload_under_traffic_drops_nothing_and_a_broken_file_is_refused(
        reloading_proxy: GuardProxy, catalogue: dict[str, tuple[str, UpstreamServer]],
        openai_upstream: UpstreamServer) -> None:
    proxy, policy = reloading_proxy, reloading_proxy.policy
    outcomes: list[tuple[int, str] | BaseException] = []
    stop = threading.Event()

    def user() -> None:
        while not stop.is_set():
            try:
                outcomes.append(post_chat(proxy, openai_upstream, f"身分證 {NATIONAL_ID}，追蹤碼 {nonce()}"))
            except BaseException as e:  # any failure is a dropped request: reported below
                outcomes.append(e)

    users = [threading.Thread(target=user) for _ in range(3)]
    for t in users:
        t.start()
    try:
        time.sleep(1.0)
        phone_only = f"請回電 {MOBILE}，追蹤碼 {nonce()}"
        assert post_chat(proxy, openai_upstream, phone_only)[0] == 200  # v1: phone numbers are redacted

        _write(policy, catalogue, "v2", {"PHONE_NUMBER": "block"})
        _wait_for_log(proxy, "policy reloaded (the policy file changed): reload-test v2")
        time.sleep(0.5)
        assert post_chat(proxy, openai_upstream, phone_only)[0] == 403  # v2 is in force

        policy.write_text(policy.read_text(encoding="utf-8").replace("action: block", "action: explode"),
                          encoding="utf-8")
        _wait_for_log(proxy, "rejected, keeping reload-test v2")
        time.sleep(0.5)
        assert post_chat(proxy, openai_upstream, phone_only)[0] == 403  # still v2
    finally:
        stop.set()
        for t in users:
            t.join(30)

    failures = [o for o in outcomes if isinstance(o, BaseException) or o[0] != 200]
    assert len(outcomes) > 20 and not failures, failures[:3]
    rejected = next(line for line in proxy.log().splitlines() if "rejected, keeping" in line)
    assert str(policy) in rejected and "explode" in rejected  # names the file and the problem
    events = proxy.events()
    versions = {e["policy_version"] for e in events}  # "v2+<hash of the content>"
    assert len(versions) == 2 and {v.split("+")[0] for v in versions} == {"v1", "v2"}
    assert not [e for e in events if e["decision"] == "error"]  # no inspection failed during the swaps


def test_with_polling_off_sighup_reloads(tmp_path: Path,
                                         catalogue: dict[str, tuple[str, UpstreamServer]]) -> None:
    policy = tmp_path / "policy.yaml"
    _write(policy, catalogue, "v1")
    proxy = GuardProxy(confdir=tmp_path, policy=policy, log_path=tmp_path / "proxy.log",
                       options=("guard_policy_reload=0",))
    proxy.start()
    try:
        _write(policy, catalogue, "v2")
        time.sleep(1.5)
        assert "policy reloaded" not in proxy.log()
        assert proxy.process is not None
        proxy.process.send_signal(signal.SIGHUP)
        _wait_for_log(proxy, "policy reloaded (SIGHUP): reload-test v2")
    finally:
        proxy.stop()
