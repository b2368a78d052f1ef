"""Masked image thumbnails in the console: kept with the event (SQLite and PostgreSQL), served only
to signed-in reviewers, never cached, refused when the stored bytes are not the ones the chain lists."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import insert, update

from guard.audit.journal import Journal
from guard.audit.schema import event_thumbnails
from guard.audit.store import AuditStore, StoredEvent, thumbnail_digest
from guard.audit.writer import AuditWriter, PendingEvent
from guard.images import THUMBNAIL_SIDE, read_text, thumbnail
from tests.ocr.render import cjk_font_path, darkest_run, png_bytes, render_lines
from tests.review.helpers import Client, event_record, finding

pytestmark = pytest.mark.skipif(cjk_font_path() is None,
                                reason="no CJK font (apt-get install fonts-noto-cjk)")

LINES = ["承辦人林育賢", "身分證字號：F225837467", "請幫我寫一封通知信。"]
OCR_PROMPT = "承辦人林育賢\n身分證字號：F225837467\n請幫我寫一封通知信。"


@pytest.fixture(scope="module")
def screenshot() -> bytes:
    # A 1080p-wide screen, so the thumbnail is a real reduction.
    return png_bytes(render_lines(LINES, size=40, width=1920))


@pytest.fixture(scope="module")
def masked_thumbnail(screenshot: bytes) -> bytes:
    ocr = read_text(screenshot)
    start = ocr.text.index("F225837467")
    return thumbnail(screenshot, ocr, [(start, start + len("F225837467"))])


def _image_event(store: AuditStore, thumbnails: tuple[bytes, ...], expires: datetime | None = None) -> str:
    record = event_record([OCR_PROMPT], [finding(OCR_PROMPT, "F225837467", "TW_NATIONAL_ID")])
    store.append([StoredEvent(record, None, expires or datetime.now(UTC) + timedelta(days=30), thumbnails)])
    return str(record["event_id"])


def test_thumbnail_is_small_jpeg_with_the_value_blacked_out(screenshot: bytes,
                                                            masked_thumbnail: bytes) -> None:
    small = Image.open(io.BytesIO(masked_thumbnail))
    assert small.format == "JPEG" and max(small.size) <= THUMBNAIL_SIDE
    ocr = read_text(screenshot)
    plain = Image.open(io.BytesIO(thumbnail(screenshot, ocr, []))).convert("L")
    # The value's line holds a solid black bar in the masked thumbnail and none in the unmasked one.
    assert darkest_run(small) > 25 > darkest_run(plain)


def test_event_page_shows_the_thumbnail_and_the_route_serves_it_privately(
        client: Callable[[str], Client], store: AuditStore, masked_thumbnail: bytes) -> None:
    event_id = _image_event(store, (masked_thumbnail,))
    assert store.event(event_id)["thumbnails"] == [thumbnail_digest(masked_thumbnail)]  # type: ignore[index]
    rita = client("rita")
    page = rita.text(f"/events/{event_id}")
    assert f'src="/events/{event_id}/images/0.jpg"' in page and "已遮蔽縮圖" in page
    served = rita.get(f"/events/{event_id}/images/0.jpg")
    assert served.status_code == 200 and served.data == masked_thumbnail
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Cache-Control"] == "no-store"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert rita.get(f"/events/{event_id}/images/1.jpg").status_code == 404
    assert "含圖片 1 張" in rita.text("/events")  # the list says which events carried images


def test_signed_out_visitor_gets_no_thumbnail(app: Flask, store: AuditStore,
                                              masked_thumbnail: bytes) -> None:
    event_id = _image_event(store, (masked_thumbnail,))
    anonymous = Client(app)
    response = anonymous.get(f"/events/{event_id}/images/0.jpg")
    assert response.status_code == 303 and "/login" in response.headers["Location"]
    assert response.data != masked_thumbnail


def test_altered_thumbnail_is_not_served(client: Callable[[str], Client], store: AuditStore,
                                         masked_thumbnail: bytes, screenshot: bytes) -> None:
    event_id = _image_event(store, (masked_thumbnail,))
    with store.writing() as conn:  # someone with database access swaps in the raw screenshot
        conn.execute(update(event_thumbnails).where(event_thumbnails.c.event_id == event_id)
                     .values(data=screenshot))
    assert client("rita").get(f"/events/{event_id}/images/0.jpg").status_code == 404
    problems = [str(p) for p in store.verify().problems]
    assert any("thumbnail 1" in p and "altered" in p for p in problems), problems


def test_verify_finds_a_thumbnail_no_event_lists(store: AuditStore, masked_thumbnail: bytes) -> None:
    event_id = _image_event(store, (masked_thumbnail,))
    assert store.verify().intact
    with store.writing() as conn:  # a second image slipped in beside the chained one
        conn.execute(insert(event_thumbnails).values(event_id=event_id, position=1, data=masked_thumbnail,
                                                     expires_at=datetime.now(UTC) + timedelta(days=1)))
    problems = [str(p) for p in store.verify().problems]
    assert any("thumbnail 2" in p and "inserted" in p for p in problems), problems


def test_purged_thumbnail_is_explained(client: Callable[[str], Client], store: AuditStore,
                                       masked_thumbnail: bytes) -> None:
    event_id = _image_event(store, (masked_thumbnail,), expires=datetime.now(UTC) - timedelta(days=1))
    store.purge()
    rita = client("rita")
    assert "縮圖已超過保存期限而清除" in rita.text(f"/events/{event_id}")
    assert rita.get(f"/events/{event_id}/images/0.jpg").status_code == 404


def test_thumbnails_survive_the_journal(tmp_path: Path, store: AuditStore, masked_thumbnail: bytes) -> None:
    """Spooled while the store is away, replayed later: the thumbnail arrives with its event."""
    journal = Journal(tmp_path / "journal.jsonl")
    record = event_record([OCR_PROMPT], [finding(OCR_PROMPT, "F225837467", "TW_NATIONAL_ID")])
    writer = AuditWriter(lambda: store, journal, store.keys)
    journal.append([writer._stored(PendingEvent(record, [OCR_PROMPT], (masked_thumbnail,)))])
    writer.open()  # replays the journal into the store
    assert store.thumbnail(str(record["event_id"]), 0) == masked_thumbnail
