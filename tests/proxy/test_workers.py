"""The inspection worker pool: real worker processes with the bundled policy's engine.

What the proxy relies on: a worker's verdict is the engine's verdict; a long prompt holds one worker,
not the others; a worker that dies or overruns fails only its own request and is replaced; a reload
lets queued inspections finish; errors carry no prompt text.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from guard.engine import Engine
from guard.formats.base import ParsedRequest
from guard.policy import load_policy
from guard.verdict import Decision
from guard.workers import InspectionError, InspectionPool, InspectionTimeout, WorkerLost
from tests.processes import state

DESTINATION = "api.openai.com:443"
LONG_PROMPT = "本案陳情人王小明，身分證字號 A123456789，聯絡電話 0912-345-678。" * 6000  # ~250,000 chars

HEAVY_PROMPT = LONG_PROMPT[:40000]  # a second or more: long enough to queue behind


def heavy_prompts(count: int) -> list[str]:
    """``count`` different heavy prompts: a worker remembers a text it has inspected, so the same
    one again would cost it nothing."""
    return [f"第{n}份：{HEAVY_PROMPT}" for n in range(count)]

PROMPTS = [
    "請幫我把這段會議紀錄改寫得更精簡。",
    "陳情人身分證字號 A123456789，手機 0912-345-678，請擬回覆。",
    "【機密】\n主旨：本週勤務調整，請摘要。",
    "請寄信給 chen.clerk@mail.example.gov.tw 說明進度。",
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy(None))


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def fresh_pool(workers: int = 1, replaced: list[str] | None = None) -> InspectionPool:
    started = InspectionPool(None, workers, replaced.append if replaced is not None else None)
    started.wait_ready()
    return started


def test_workers_return_the_engines_verdicts(engine: Engine) -> None:
    pool = fresh_pool(workers=2)

    async def inspect_all():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*(pool.inspect([p], DESTINATION) for p in PROMPTS))

    try:
        verdicts = run(inspect_all())
    finally:
        pool.close()
    assert verdicts == [engine.inspect_segments([p], DESTINATION) for p in PROMPTS]


def test_one_long_prompt_does_not_hold_up_a_short_one() -> None:
    pool = fresh_pool(workers=2)
    finished: list[str] = []

    async def both() -> None:
        async def inspect(name: str, text: str) -> None:
            await pool.inspect([text], DESTINATION, timeout=60)
            finished.append(name)

        await asyncio.gather(inspect("long", LONG_PROMPT), inspect("short", PROMPTS[1]))

    try:
        run(both())
    finally:
        pool.close()
    assert finished == ["short", "long"]


def test_jobs_beyond_the_workers_queue_and_all_complete() -> None:
    pool = fresh_pool(workers=1)

    async def many() -> list[Decision]:
        verdicts = await asyncio.gather(*(pool.inspect([p], DESTINATION) for p in PROMPTS * 3))
        return [v.decision for v in verdicts]

    try:
        decisions = run(many())
    finally:
        pool.close()
    assert decisions == [Decision.ALLOW, Decision.REDACT, Decision.BLOCK, Decision.REDACT] * 3
    assert pool.pending == 0


def test_a_killed_worker_fails_its_request_and_is_replaced() -> None:
    replaced: list[str] = []
    pool = fresh_pool(workers=1, replaced=replaced)
    (pid,) = pool.worker_pids

    async def killed_midway() -> None:
        job = asyncio.ensure_future(pool.inspect([LONG_PROMPT], DESTINATION, timeout=60))
        await asyncio.sleep(0.3)  # the worker is busy with the long prompt now
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerLost):
            await job
        verdict = await pool.inspect([PROMPTS[1]], DESTINATION)  # served by the replacement
        assert verdict.decision is Decision.REDACT
        assert pool.worker_pids and pool.worker_pids != (pid,)

    try:
        run(killed_midway())
    finally:
        pool.close()
    assert replaced == ["died"]


def test_a_worker_past_its_time_limit_is_killed_and_replaced() -> None:
    replaced: list[str] = []
    pool = fresh_pool(workers=1, replaced=replaced)
    (pid,) = pool.worker_pids

    async def overrun() -> None:
        started = time.monotonic()
        with pytest.raises(InspectionTimeout):
            await pool.inspect([LONG_PROMPT], DESTINATION, timeout=0.2)
        assert time.monotonic() - started < 5  # not the whole inspection
        verdict = await pool.inspect([PROMPTS[2]], DESTINATION)
        assert verdict.decision is Decision.BLOCK

    try:
        run(overrun())
    finally:
        pool.close()
    assert replaced == ["overran"]
    _wait_until_gone(pid)


def test_an_engine_error_names_its_type_but_never_the_prompt() -> None:
    replaced: list[str] = []
    pool = fresh_pool(workers=1, replaced=replaced)

    async def broken() -> str:
        with pytest.raises(InspectionError) as raised:
            await pool.inspect(["身分證字號 A123456789", b"A123456789"], DESTINATION)  # type: ignore[list-item]
        return str(raised.value)

    try:
        message = run(broken())
    finally:
        pool.close()
    assert "raised" in message and "A123456789" not in message
    assert replaced == []  # the worker itself is fine


def test_closing_for_a_reload_lets_queued_inspections_finish() -> None:
    pool = fresh_pool(workers=1)

    async def reload_midway() -> list[Decision]:
        jobs = [asyncio.ensure_future(pool.inspect([p], DESTINATION)) for p in PROMPTS]
        await asyncio.sleep(0)  # all submitted
        pool.close(finish_pending=True)
        with pytest.raises(WorkerLost):  # a closed pool takes nothing new
            await pool.inspect([PROMPTS[0]], DESTINATION)
        return [v.decision for v in await asyncio.gather(*jobs)]

    (pid,) = pool.worker_pids
    assert run(reload_midway()) == [Decision.ALLOW, Decision.REDACT, Decision.BLOCK, Decision.REDACT]
    _wait_until_gone(pid)  # and then the old worker exits


def test_closing_for_shutdown_fails_queued_inspections_closed() -> None:
    pool = fresh_pool(workers=1)

    async def shutdown_midway() -> list[object]:
        jobs = [asyncio.ensure_future(pool.inspect([LONG_PROMPT if i == 0 else p], DESTINATION, timeout=60))
                for i, p in enumerate(PROMPTS)]
        await asyncio.sleep(0.2)
        pool.close()
        return await asyncio.gather(*jobs, return_exceptions=True)

    (pid,) = pool.worker_pids
    results = run(shutdown_midway())
    assert all(isinstance(r, WorkerLost) for r in results)
    _wait_until_gone(pid)


def test_a_worker_that_cannot_build_its_engine_stops_start_up(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("entities:\n  TW_NATIONAL_ID: {action: shred}\n", encoding="utf-8")
    pool = InspectionPool(str(broken), workers=1)
    try:
        with pytest.raises(RuntimeError, match=r"broken\.yaml"):
            pool.wait_ready()
    finally:
        pool.close()


def test_without_worker_processes_the_engine_runs_in_a_thread(engine: Engine) -> None:
    pool = fresh_pool(workers=0)

    async def inspect():  # type: ignore[no-untyped-def]
        return await pool.inspect([PROMPTS[1]], DESTINATION)

    try:
        assert run(inspect()) == engine.inspect_segments([PROMPTS[1]], DESTINATION)
        assert pool.worker_pids == ()
    finally:
        pool.close()



def _wait_until_gone(pid: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if state(pid) in ("", "Z"):  # exited (a zombie until its reaper joins it)
            return
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} still running")


def test_one_users_heavy_prompts_leave_a_worker_for_everyone_else() -> None:
    pool = fresh_pool(workers=2)
    finished: list[str] = []

    async def all_of_them() -> None:
        async def inspect(user: str, text: str) -> None:
            await pool.inspect([text], DESTINATION, timeout=120, user=user, queue_timeout=600)
            finished.append(user)

        heavy = [inspect("heavy", text) for text in heavy_prompts(2)]
        await asyncio.sleep(0)
        others = [inspect(f"user{n}", PROMPTS[n % len(PROMPTS)]) for n in range(4)]
        await asyncio.gather(*heavy, *others)

    try:
        run(all_of_them())
    finally:
        pool.close()
    # The heavy user holds one worker at a time; everyone else is served on the other one.
    assert finished[:4] == ["user0", "user1", "user2", "user3"]
    assert finished[4:] == ["heavy"] * 2


def test_the_time_limit_counts_inspection_not_the_wait_in_the_queue() -> None:
    pool = fresh_pool(workers=1)

    async def queued_behind_a_long_one() -> tuple[float, Decision]:
        # Three heavy texts in one job: a worker busy for seconds, whatever the machine's speed.
        long_job = asyncio.ensure_future(pool.inspect(heavy_prompts(3), DESTINATION, timeout=300))
        await asyncio.sleep(0)
        started = time.monotonic()
        # 0.5 s is ample for this prompt, and far less than the wait behind the long one.
        verdict = await pool.inspect([PROMPTS[2]], DESTINATION, timeout=0.5, queue_timeout=600)
        waited = time.monotonic() - started
        await long_job
        return waited, verdict.decision

    try:
        waited, decision = run(queued_behind_a_long_one())
    finally:
        pool.close()
    assert waited > 0.5  # it did wait longer than its limit, in the queue
    assert decision is Decision.BLOCK


def test_a_job_that_waits_too_long_for_a_worker_fails_closed() -> None:
    pool = fresh_pool(workers=1)

    async def starved() -> None:
        # Three heavy texts in one job: a worker busy for seconds, whatever the machine's speed.
        long_job = asyncio.ensure_future(pool.inspect(heavy_prompts(3), DESTINATION, timeout=300))
        await asyncio.sleep(0)
        with pytest.raises(InspectionTimeout):
            await pool.inspect([PROMPTS[1]], DESTINATION, queue_timeout=0.2)
        await long_job

    try:
        run(starved())
    finally:
        pool.close()


# ---------------------------------------------------------------- uploads: documents are read in the workers

UPLOAD_TYPE = "multipart/form-data; boundary=b"


def _upload(name: str, data: bytes) -> bytes:
    return (b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + name.encode() + b'"\r\n\r\n'
            + data + b"\r\n--b--\r\n")


@pytest.mark.parametrize("workers", [1, 0])
def test_an_upload_is_extracted_in_a_worker_and_can_be_rewritten(workers: int) -> None:
    from guard.formats import format_for

    body = _upload("a.txt", "陳情人身分證字號 A123456789".encode())
    pool = fresh_pool(workers=workers)
    try:
        parsed = run(pool.extract(format_for("openai"), body, UPLOAD_TYPE, "/v1/files"))
    finally:
        pool.close()
    assert parsed.texts[-1] == "陳情人身分證字號 A123456789"
    rewritten = format_for("openai").rewrite(parsed, [t.replace("A123456789", "<ID>") for t in parsed.texts])
    assert rewritten == body.replace(b"A123456789", b"<ID>")


@pytest.mark.parametrize("workers", [1, 0])
def test_a_websocket_message_holding_a_file_is_read_in_a_worker(workers: int) -> None:
    import base64
    import json

    from guard.formats import websocket
    from tests.formats.files import docx

    attached = base64.b64encode(docx(["陳情人王小明，身分證 A123456789"])).decode()
    message = json.dumps({"event": "send", "content": [{"type": "text", "text": "請摘要附件"},
                                                        {"type": "file", "data": attached}]}).encode()
    plain = json.dumps({"event": "send", "content": [{"type": "text", "text": "請摘要附件"}]}).encode()
    assert websocket.may_hold_files(message) and not websocket.may_hold_files(plain)
    pool = fresh_pool(workers=workers)
    try:
        parsed = run(pool.extract(websocket.MessageReader("copilot"), message, "", "", 30.0))
    finally:
        pool.close()
    texts = [segment.text for segment in parsed.all_segments]
    assert "請摘要附件" in texts
    assert any("A123456789" in t for t in texts)  # the document's text, read in the worker


def test_an_unreadable_upload_comes_back_as_itself_without_its_content() -> None:
    from guard.formats import UnreadableContent, format_for

    body = _upload("王小明.doc", b"\xd0\xcf\x11\xe0" + b"\x00" * 32)
    image = _upload("王小明.png", b"\x89PNG\r\n\x1a\n\x00")
    pool = fresh_pool()

    async def both() -> ParsedRequest:
        with pytest.raises(UnreadableContent) as error:
            await pool.extract(format_for("openai"), body, UPLOAD_TYPE, "/v1/files")
        assert "王小明" not in str(error.value) and "files[0](.doc)" in str(error.value)
        # an image file is left to OCR (guard.image_parts): named, not read
        return await pool.extract(format_for("openai"), image, UPLOAD_TYPE, "/v1/files")

    try:
        parsed = run(both())
    finally:
        pool.close()
    assert parsed.uninspected == ("files[0](.png)",)
