"""guard.images: OCR of rendered Traditional Chinese images, and masks that make the values unreadable."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from guard.engine import Engine
from guard.images import ImageUnreadable, mask, open_image, read_text
from guard.policy import load_policy
from tests.ocr.render import cjk_font_path, png_bytes, render_lines, scanned, screen_1080p

pytestmark = pytest.mark.skipif(cjk_font_path() is None,
                                reason="no CJK font (apt-get install fonts-noto-cjk)")

PII_LINES = [
    "承辦人林育賢", "身分證字號：F225837467", "住址：臺北市中正區重慶南路一段122號", "請幫我寫一封通知信。",
]
PII_VALUES = ["林育賢", "F225837467", "重慶南路一段122號"]
CLEAN_LINES = [
    "今天天氣很好，我們去公園散步。", "會議紀錄請於週五前送交秘書室。", "生成式AI使用注意事項說明會",
]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy(None))


def _compact(text: str) -> str:
    return "".join(text.split()).replace(":", "：")


def _masked(engine: Engine, data: bytes) -> tuple[bytes, list[str]]:
    ocr = read_text(data)
    verdict = engine.inspect(ocr.text)
    spans = [(f.start, f.end) for f in verdict.findings]
    return mask(data, ocr, spans), [f.entity_type for f in verdict.findings]


@pytest.mark.parametrize(("lines", "make"), [
    pytest.param(PII_LINES, lambda lines: render_lines(lines), id="screenshot"),
    pytest.param(PII_LINES, lambda lines: scanned(render_lines(lines, size=30)), id="scanned page"),
    # 18 px is about the smallest CJK text Tesseract reads reliably (README: at 16 px 賢 reads as 買).
    pytest.param(PII_LINES, lambda lines: render_lines(lines, size=18), id="small screen text"),
    pytest.param(PII_LINES, screen_1080p, id="1080p query screen"),
])
def test_ocr_reads_the_values_and_the_mask_hides_them(engine: Engine, lines: list[str], make) -> None:  # type: ignore[no-untyped-def]
    data = png_bytes(make(lines))
    text = _compact(read_text(data).text)
    for value in PII_VALUES:
        assert value in text
    masked, types = _masked(engine, data)
    assert {"PERSON", "TW_NATIONAL_ID", "TW_ADDRESS"} <= set(types)
    after = _compact(read_text(masked).text)
    for value in PII_VALUES:
        assert value not in after
    assert "F2258" not in after and "122號" not in after  # not even a part of a value is left
    assert "請幫我寫一封通知信" in after  # the rest of the screenshot still reads
    assert engine.inspect(read_text(masked).text).findings == ()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_mask_keeps_the_format_and_size(engine: Engine, fmt: str) -> None:
    image = render_lines(PII_LINES)
    out = io.BytesIO()
    image.save(out, format=fmt)
    masked, _ = _masked(engine, out.getvalue())
    reopened = Image.open(io.BytesIO(masked))
    assert (reopened.format, reopened.size) == (fmt, image.size)


def test_clean_image_has_nothing_to_mask(engine: Engine) -> None:
    ocr = read_text(png_bytes(render_lines(CLEAN_LINES)))
    assert "會議紀錄請於週五前送交秘書室" in _compact(ocr.text)
    assert engine.inspect(ocr.text).findings == ()


def test_classification_marking_in_an_image_blocks(engine: Engine) -> None:
    ocr = read_text(png_bytes(render_lines(["【機密】", "主旨：本署明年度預算編列原則，請研議。"])))
    assert engine.inspect(ocr.text).decision.value == "block"


def test_large_image_is_downscaled_and_boxes_map_back() -> None:
    image = Image.new("RGB", (3840, 2160), "white")
    image.paste(render_lines(["身分證字號：F225837467"], size=64), (2400, 1600))
    ocr = read_text(png_bytes(image))
    assert (ocr.width, ocr.height) == (3840, 2160)
    start = ocr.text.index("F225837467")
    boxes = [b for b in ocr.boxes[start:start + 10] if b is not None]
    assert all(b.left >= 2400 and b.right <= 3840 and b.top >= 1600 and b.bottom <= 1800 for b in boxes)


@pytest.mark.parametrize(("data", "message"), [
    (b"not an image at all", "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a readable image"),
    (b"BM" + b"\x00" * 60, "not a readable image"),
])
def test_unreadable_bytes_raise(data: bytes, message: str) -> None:
    with pytest.raises(ImageUnreadable, match=message):
        open_image(data)


def test_animated_gif_is_unreadable() -> None:
    frames = [render_lines(["第一頁"]), render_lines(["F225837467"])]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageUnreadable, match="animated"):
        open_image(out.getvalue())


def test_decompression_bomb_is_refused_before_decoding() -> None:
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, format="PNG")  # 100 MP of one bit: a tiny file
    with pytest.raises(ImageUnreadable, match="too large"):
        open_image(out.getvalue())
