"""Render Traditional Chinese text into test images: screenshots, scanned-looking pages, 1080p screens.

Uses a CJK font from the Debian package fonts-noto-cjk (tests/run.sh installs it); the images are
made in the tests, so no image file is shipped or fetched.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_PATHS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
# Index of the Traditional Chinese face in the Noto CJK collections (JP, KR, SC, TC, HK, ...).
TC_FACE_INDEX = 3


def cjk_font_path() -> Path | None:
    """The first CJK font installed, or None (tests that need one skip)."""
    return next((p for p in FONT_PATHS if p.exists()), None)


def font(size: int) -> ImageFont.FreeTypeFont:
    path = cjk_font_path()
    if path is None:
        raise FileNotFoundError("no CJK font installed (apt-get install fonts-noto-cjk)")
    index = TC_FACE_INDEX if "Noto" in path.name else 0
    return ImageFont.truetype(str(path), size, index=index)


def render_lines(lines: Sequence[str], size: int = 28, width: int | None = None, margin: int = 24,
                 background: str = "white", ink: str = "#202020") -> Image.Image:
    """Lines of text on a plain background, like a screenshot of a form or a chat."""
    face = font(size)
    line_height = int(size * 1.6)
    measured = max(int(face.getlength(line)) for line in lines) if lines else 0
    image = Image.new("RGB", (width or measured + 2 * margin, line_height * len(lines) + 2 * margin),
                      background)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * line_height), line, font=face, fill=ink)
    return image


def scanned(image: Image.Image, seed: int = 7) -> Image.Image:
    """A scanned-looking copy: grey, slightly rotated, blurred and speckled."""
    rng = random.Random(seed)
    grey = image.convert("L").rotate(0.6, expand=True, fillcolor=235)
    grey = grey.filter(ImageFilter.GaussianBlur(0.6))
    pixels = grey.load()
    assert pixels is not None
    for _ in range(grey.width * grey.height // 2000):
        x, y = rng.randrange(grey.width), rng.randrange(grey.height)
        pixels[x, y] = rng.choice((90, 140, 200))
    return grey


def screen_1080p(lines: Sequence[str], size: int = 22) -> Image.Image:
    """A 1920x1080 screen: a title bar, a side panel and the lines in the main area."""
    image = Image.new("RGB", (1920, 1080), "#f3f3f3")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 1920, 56), fill="#2b579a")
    draw.text((24, 12), "戶役政資訊系統 — 查詢畫面", font=font(26), fill="white")
    draw.rectangle((0, 56, 300, 1080), fill="#e1e1e1")
    for i, item in enumerate(("首頁", "戶籍查詢", "車籍查詢", "勞保查詢", "登出")):
        draw.text((32, 90 + i * 48), item, font=font(22), fill="#333333")
    body = render_lines(lines, size=size, width=1500, background="white")
    image.paste(body, (360, 100))
    return image


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def darkest_run(image: Image.Image) -> int:
    """The longest horizontal run of near-black pixels in a greyscale image (a mask's black bar)."""
    pixels = image.convert("L").load()
    assert pixels is not None
    best = 0
    for y in range(image.height):
        run = 0
        for x in range(image.width):
            run = run + 1 if pixels[x, y] < 40 else 0  # type: ignore[operator]
            best = max(best, run)
    return best
