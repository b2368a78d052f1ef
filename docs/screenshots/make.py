"""Screenshots of the review console for the README, from a demo store made here.

    .venv/bin/python docs/screenshots/make.py --client-python PATH [--chromium /usr/bin/chromium]

Builds a keyed SQLite store in a temporary directory with a month of invented events (fixed random
seed: the same pictures each run), starts ``guard review`` on it, and has headless Chromium
(``shoot.py``, run by an interpreter with Playwright, e.g. tests' GUARD_CLIENT_PYTHON) save the main
pages as PNG files beside this script. Every name and number in the demo is made up.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from guard.audit.accounts import add_user
from guard.audit.events import EventKind, InspectionEvent, new_event_id
from guard.audit.evidence import seal
from guard.audit.keys import new_key, parse_keys
from guard.audit.masking import FoundAt, snippets
from guard.audit.store import AuditStore, StoredEvent
from guard.review import queries

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REVIEWER, PASSWORD = "reviewer.chen", "demo reviewer passphrase"

# (template, [(placeholder, value, entity type)], decision)
PROMPTS = [
    ("請協助回覆民眾陳情，陳情人{name}，身分證字號 {id}，手機 {phone}。",
     [("name", "王小明", "PERSON"), ("id", "A123456789", "TW_NATIONAL_ID"),
      ("phone", "0912345678", "PHONE_NUMBER")], "redact"),
    ("幫我整理違規車輛 {plate} 的罰單通知，車主 {name}。",
     [("plate", "ABC-1234", "TW_LICENSE_PLATE"), ("name", "林美惠", "PERSON")], "redact"),
    ("密等：{mark}\n主旨：採購案評選會議紀錄，請摘要重點。",
     [("mark", "機密", "CLASSIFICATION_MARKER")], "block"),
    ("請寄信給 {mail} 確認居留證 {arc} 的換發進度。",
     [("mail", "ming.lee@example.gov.tw", "EMAIL_ADDRESS"), ("arc", "A812345678", "TW_RESIDENT_ID")],
     "redact"),
    ("把本局服務專線 {line} 寫進公告稿最後一行。", [("line", "02-2311-3456", "PHONE_NUMBER")], "redact"),
]
PLAIN = ["請幫我把這段公文改得更精簡。", "生成式 AI 使用指引的重點是什麼？", "翻譯成英文：本案已完成驗收。"]
ACTIONS = {"allow": "forwarded", "redact": "rewritten", "block": "answered", "error": "answered"}
USERS = ["chang.wei", "lin.yating", "huang.jie", "wu.mei", "tsai.hao", ""]
SERVICES = ["chatgpt", "openai-api", "claude", "gemini", "copilot"]


def _event(rng: random.Random, when: datetime) -> tuple[dict[str, object], list[str] | None]:
    user, service = rng.choice(USERS), rng.choice(SERVICES)
    roll = rng.random()
    if roll < 0.55:
        text, findings, decision, kind = rng.choice(PLAIN), [], "allow", EventKind.ALLOWED
    elif roll < 0.6:
        text, findings, decision, kind = rng.choice(PLAIN), [], "error", EventKind.FAILED
    else:
        template, values, decision = rng.choice(PROMPTS)
        text = template.format(**{key: value for key, value, _ in values})
        findings = [FoundAt(entity, 0, text.index(value), text.index(value) + len(value), 0.95, decision)
                    for _, value, entity in values]
        kind = EventKind.BLOCKED if decision == "block" else EventKind.REDACTED
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.entity_type] = counts.get(f.entity_type, 0) + 1
    event = InspectionEvent(
        event_id=new_event_id(when), kind=kind, decision=decision,
        time=when.isoformat(timespec="milliseconds"), user=user,
        client=f"10.8.{rng.randint(1, 9)}.{rng.randint(2, 250)}",
        service=service, host=f"{service}.example", path="/v1/chat/completions", method="POST",
        entities=counts, policy_name="default", policy_version="2026.11", tier="external",
        latency_ms=round(rng.uniform(3, 40), 1), request_bytes=len(text.encode()) + 200, segments=1,
        action_taken=ACTIONS[decision],
        error="parse_failed" if decision == "error" else "", snippets=tuple(snippets([text], findings)))
    return event.fields(), ([text] if findings else None)


def build_store(directory: Path) -> tuple[str, Path, dict[str, str]]:
    key_line = new_key()
    key_file = directory / "audit.key"
    key_file.write_text(key_line + "\n", encoding="ascii")
    keys = parse_keys(key_line, str(key_file))
    url = f"sqlite:///{directory / 'demo.db'}"
    store = AuditStore.open(url, keys, node="guard-1")
    rng = random.Random(20261128)
    now = datetime.now(UTC)
    items = []
    for day in range(30):
        for _ in range(rng.randint(15, 40) + (25 if day == 0 else 0)):
            when = now - timedelta(days=day, minutes=rng.randint(1, 600))
            record, evidence = _event(rng, when)
            sealed = seal(evidence, str(record["event_id"]), keys) if evidence else None
            items.append(StoredEvent(record, sealed, now + timedelta(days=30) if sealed else None))
    items.sort(key=lambda item: str(item.record["time"]))
    store.append(items)
    add_user(store, REVIEWER, "admin", PASSWORD, actor="demo")
    flagged = [i.record for i in items if i.record["decision"] == "redact" and i.evidence is not None]
    pick = flagged[-1]
    queries.set_disposition(store, str(flagged[-2]["event_id"]), "confirmed", "已通知單位主管", REVIEWER,
                            "10.8.0.5")
    store.close()
    return url, key_file, {"event": str(pick["event_id"])}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client-python", required=True, help="a Python with Playwright installed")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", default=str(HERE), help="where the PNG files go (default: beside this)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, key_file, picks = build_store(Path(tmp))
        port = _free_port()
        console = subprocess.Popen([sys.executable, "-m", "guard.cli", "review", "--audit-db", url,
                                    "--audit-key-file", str(key_file), "--listen-port", str(port)],
                                   cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.monotonic() > deadline or console.poll() is not None:
                    raise SystemExit("guard review did not start")
                time.sleep(0.2)
            done = subprocess.run([args.client_python, str(HERE / "shoot.py"), "--url", f"http://127.0.0.1:{port}",
                                   "--chromium", args.chromium, "--name", REVIEWER, "--password", PASSWORD,
                                   "--event", picks["event"], "--out", args.out], check=False, timeout=300)
            return done.returncode
        finally:
            console.terminate()
            console.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
