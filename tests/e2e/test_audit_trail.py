"""The audit trail behind the running proxy: durable under SIGKILL, chained, and free of raw values.

Each test runs once with the embedded SQLite store and once with a real PostgreSQL database.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.audit.keys import load_keys, new_key
from guard.audit.store import AuditStore
from tests.databases import BACKENDS, audit_database
from tests.e2e.helpers import (
    MOBILE,
    NATIONAL_ID,
    RAW_VALUES,
    GuardProxy,
    classified_prompt,
    clean_prompt,
    curl,
    nonce,
    pii_prompt,
    post_chat,
    write_policy,
)
from tests.e2e.upstream import UpstreamServer

pytestmark = pytest.mark.usefixtures("curl_available")
CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}


def _chat_body(prompt: str) -> bytes:
    return json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
                      ensure_ascii=False).encode()


@pytest.fixture(params=BACKENDS)
def audited(request: pytest.FixtureRequest, tmp_path: Path,
            catalogue: dict[str, tuple[str, UpstreamServer]]) -> Iterator[tuple[GuardProxy, str, Path]]:
    """A proxy of its own with an audit key, on SQLite or PostgreSQL: (proxy, store URL, key file)."""
    key_file = tmp_path / "audit.key"
    key_file.write_text(new_key() + "\n")
    with audit_database(request.param, tmp_path) as url:
        proxy = GuardProxy(confdir=tmp_path, policy=write_policy(tmp_path / "policy.yaml", catalogue),
                           log_path=tmp_path / "proxy.log", audit_db=url,
                           options=(f"guard_audit_key_file={key_file}", "guard_node=e2e-node"))
        proxy.start()
        try:
            yield proxy, url, key_file
        finally:
            proxy.stop()


def test_every_answered_request_has_its_event_after_sigkill(
        audited: tuple[GuardProxy, str, Path], openai_upstream: UpstreamServer) -> None:
    proxy, url, key_file = audited
    answered: list[tuple[int, str]] = []
    stop = threading.Event()

    def user(index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            prompt = classified_prompt(nonce()) if (index + n) % 2 else pii_prompt(nonce())
            try:
                answered.append(post_chat(proxy, openai_upstream, prompt))
            except (OSError, http.client.HTTPException):
                return  # the proxy is gone: this request got no answer, so it owes no event

    users = [threading.Thread(target=user, args=(i,)) for i in range(4)]
    for t in users:
        t.start()
    deadline = time.monotonic() + 60
    while len(answered) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.process is not None
    os.kill(proxy.process.pid, signal.SIGKILL)  # mid-load: requests are in flight
    proxy.process.wait(10)
    stop.set()
    for t in users:
        t.join(30)

    decided = {event_id for status, event_id in answered if status in (200, 403)}
    assert len(decided) >= 40 and all(event_id for _, event_id in answered)
    assert {status for status, _ in answered} == {200, 403}

    proxy.start()  # a restart replays anything that was spooled
    proxy.stop()
    store = AuditStore.open(url, load_keys(str(key_file)))
    try:
        stored = {e["event_id"]: e for e in store.events()}
        missing = decided - stored.keys()
        assert not missing, f"{len(missing)} answered requests have no audit event"
        assert {stored[i]["decision"] for i in decided} == {"block", "redact"}
        assert {stored[i]["node"] for i in decided} == {"e2e-node"}
        report = store.verify()
        assert report.intact, report.problems
    finally:
        store.close()


def test_raw_values_are_only_inside_encrypted_evidence(
        audited: tuple[GuardProxy, str, Path], openai_upstream: UpstreamServer) -> None:
    proxy, url, key_file = audited
    redacted = curl(proxy, f"{openai_upstream.base_url}{CHAT}", _chat_body(pii_prompt(nonce())), JSON)
    blocked = curl(proxy, f"{openai_upstream.base_url}{CHAT}",
                   _chat_body(classified_prompt(nonce()) + pii_prompt(nonce())), JSON)
    clean = curl(proxy, f"{openai_upstream.base_url}{CHAT}", _chat_body(clean_prompt(nonce())), JSON)
    assert (redacted.status, blocked.status, clean.status) == (200, 403, 200)
    proxy.stop()  # everything flushed and closed

    # Nowhere on disk: the SQLite files (with WAL), the journal, the proxy's log.
    for path in proxy.confdir.iterdir():
        if path.is_file():
            data = path.read_bytes()
            for value in RAW_VALUES:
                assert value.encode() not in data, f"a raw value is in {path.name}"
    store = AuditStore.open(url, load_keys(str(key_file)))
    try:
        with store.engine.connect() as conn:  # nowhere in any table (PostgreSQL keeps no local files)
            dump = "\n".join(str(row) for table in ("events", "event_entities", "evidence", "chain_head")
                             for row in conn.exec_driver_sql(f"SELECT * FROM {table}"))
        for value in RAW_VALUES:
            assert value not in dump
        records = {e["event_id"]: e for e in store.events()}
        redact_event = records[redacted.headers["x-guard-event-id"]]
        assert redact_event["entities"] == {"TW_NATIONAL_ID": 1, "PHONE_NUMBER": 1}
        assert "A12*****89" in redact_event["snippets"][0]["text"]
        # ... and only the evidence, opened with a key and a reason, holds them.
        texts = store.open_evidence(redacted.headers["x-guard-event-id"], "reviewer", "e2e check")
        assert NATIONAL_ID in "".join(texts) and MOBILE in "".join(texts)
        assert not store.has_evidence(clean.headers["x-guard-event-id"])
        assert store.verify().intact
    finally:
        store.close()
