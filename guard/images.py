"""Text in images: OCR (Tesseract, Traditional Chinese) with boxes, and black boxes over the values found.

``read_text`` turns image bytes into text plus, for every character, the box it was read from;
``mask`` paints black boxes over character spans of that text and returns new image bytes in the
same format. The recognizers then run on the OCR text like on any prompt, so an image follows the
same policy as text: a classification marking blocks it, personal data is blacked out.

Engine: Tesseract 5 through pytesseract, with Debian's ``tesseract-ocr`` and ``tesseract-ocr-chi-tra``
(the language data is installed with the package, nothing is fetched at run time). Measured against
RapidOCR (PP-OCR in ONNX) on rendered Traditional Chinese screenshots, Tesseract read more of the
characters right (0.98 vs 0.93; PP-OCR's bundled model writes simplified forms such as 号 for 號)
in less time (README, "Text in images"). Tesseract runs as a child process with a time limit, so a
pathological image cannot hold an inspection worker past it.
"""

from __future__ import annotations

import io
import os
import unicodedata
import warnings
from dataclasses import dataclass

from PIL import Image, ImageDraw, UnidentifiedImageError

#: Media types read here; anything else is unreadable content (the policy decides).
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG", "image/webp": "WEBP",
               "image/gif": "GIF"}
# chi_tra alone reads the Latin letters and digits of IDs too; adding eng made Tesseract take whole
# Chinese lines for garbled English (承辦人林育賢 -> "AGAMA") and doubled the time.
LANGUAGES = "chi_tra"
# Larger images are scaled down before OCR: a 4K screenshot costs four times a 1080p one and
# its text is no more legible. Boxes are scaled back to the original image.
MAX_OCR_PIXELS = 1920 * 1200
# A decompression bomb (a tiny PNG declaring 100 000 x 100 000 pixels) is refused before decoding.
MAX_IMAGE_PIXELS = 40_000_000
MIN_CONFIDENCE = 0.0   # Tesseract's -1 marks layout rows without text
BOX_PADDING = 3
# A horizontal gap wider than this many character heights separates columns, not words.
COLUMN_GAP = 1.5


class ImageUnreadable(ValueError):
    """The bytes are not an image this module reads (corrupt, animated, too large, unknown type)."""


@dataclass(frozen=True)
class ReadImage:
    """A job for an inspection worker: OCR these bytes within ``timeout`` seconds."""

    data: bytes
    timeout: float


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int


@dataclass(frozen=True)
class OcrText:
    """What OCR read: the text (lines joined by newlines) and a box for each of its characters.

    ``boxes[i]`` is the box of ``text[i]`` in the original image's pixels, or None for the
    spaces and newlines the reader inserted between words and lines.
    """

    text: str
    boxes: tuple[Box | None, ...]
    width: int
    height: int
    image_format: str


def open_image(data: bytes) -> Image.Image:
    """Decode ``data`` (PNG, JPEG, WebP or a still GIF), or raise :class:`ImageUnreadable`."""
    try:
        with warnings.catch_warnings():
            # Pillow warns past 89 MP; the size is checked here, before any pixel is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
        with probe:
            if probe.width * probe.height > MAX_IMAGE_PIXELS:
                raise ImageUnreadable(f"image too large ({probe.width}x{probe.height})")
            if probe.format not in IMAGE_TYPES.values():
                raise ImageUnreadable(f"unsupported image format {probe.format}")
            if getattr(probe, "n_frames", 1) > 1:
                raise ImageUnreadable("animated image (every frame would need reading)")
            probe.load()
            image = probe.copy()
            image.format = probe.format  # copy() drops it; mask() writes the same format back
            return image
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as e:
        raise ImageUnreadable(f"not a readable image: {e.__class__.__name__}") from None


def _char_units(ch: str) -> int:
    """Relative width: CJK and full-width characters are about twice as wide as Latin ones."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _split_box(word: str, box: Box) -> list[Box]:
    """Each character's share of a word's box, in proportion to its width."""
    units = [_char_units(ch) for ch in word]
    total = sum(units) or 1
    out, x = [], float(box.left)
    for u in units:
        step = (box.right - box.left) * u / total
        out.append(Box(int(x), box.top, round(x + step), box.bottom))
        x += step
    return out


def _needs_space(before: str, after: str) -> bool:
    """Tesseract splits Latin text at its spaces; CJK text is written without them."""
    return before[-1:].isascii() and after[:1].isascii()


def _rows(words: list[tuple[str, Box]]) -> list[list[tuple[str, Box]]]:
    """Words grouped into visual rows (top to bottom), each row left to right.

    Tesseract's own blocks follow its page-layout guess, which on a form or a query screen can cut
    one line in two (臺北市中正區重 | 慶南路...) and read the halves far apart; a row is what a
    person reads as one line.
    """
    if not words:
        return []
    # A row is a band one typical character high around the mean centre of its words: flat
    # characters (一, punctuation) have tiny boxes, and a scanned page's lines slope a little.
    heights = sorted(box.bottom - box.top for _, box in words)
    half = heights[len(heights) // 2] / 2
    rows: list[list[tuple[str, Box]]] = []
    centres: list[float] = []
    for word, box in sorted(words, key=lambda w: (w[1].top + w[1].bottom) / 2):
        centre = (box.top + box.bottom) / 2
        if rows and abs(centre - centres[-1]) <= half:
            rows[-1].append((word, box))
            centres[-1] += (centre - centres[-1]) / len(rows[-1])
        else:
            rows.append([(word, box)])
            centres.append(centre)
    return [sorted(row, key=lambda w: w[1].left) for row in rows]


def read_text(data: bytes, timeout: float = 20.0) -> OcrText:
    """OCR ``data``; raises :class:`ImageUnreadable` for bad images, ``RuntimeError`` past ``timeout``."""
    import pytesseract

    # Tesseract's OpenMP threads would compete with the other inspection workers for the cores.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    image = open_image(data)
    fmt = image.format or "PNG"
    width, height = image.size
    scale = 1.0
    if width * height <= MAX_OCR_PIXELS / 4:
        scale = 2.0  # Tesseract reads small screen text (12-16 px) far better at twice the size
        image = image.resize((width * 2, height * 2), Image.Resampling.LANCZOS)
    elif width * height > MAX_OCR_PIXELS:
        scale = (MAX_OCR_PIXELS / (width * height)) ** 0.5
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    table = pytesseract.image_to_data(image, lang=LANGUAGES, timeout=timeout,
                                      output_type=pytesseract.Output.DICT)
    words: list[tuple[str, Box]] = []
    for i, word in enumerate(table["text"]):
        word = word.strip()
        if not word or float(table["conf"][i]) < MIN_CONFIDENCE:
            continue
        left, top = table["left"][i] / scale, table["top"][i] / scale
        words.append((word, Box(int(left), int(top), round(left + table["width"][i] / scale),
                                round(top + table["height"][i] / scale))))
    text: list[str] = []
    boxes: list[Box | None] = []
    for number, row in enumerate(_rows(words)):
        if number:
            text.append("\n")
            boxes.append(None)
        for k, (word, box) in enumerate(row):
            if k:
                before, before_box = row[k - 1]
                gap = box.left - before_box.right
                # Columns apart get two spaces: no pattern's single space bridges them.
                sep = "  " if gap > COLUMN_GAP * (box.bottom - box.top) else (
                    " " if _needs_space(before, word) else "")
                text.extend(sep)
                boxes.extend([None] * len(sep))
            text.extend(word)
            boxes.extend(_split_box(word, box))
    return OcrText("".join(text), tuple(boxes), width, height, fmt)


def regions(ocr: OcrText, spans: list[tuple[int, int]]) -> list[Box]:
    """One padded box per line of each span: the union of its characters' boxes."""
    out: list[Box] = []
    for start, end in spans:
        line: list[Box] = []
        for box in (*ocr.boxes[start:end], None):
            if box is not None:
                line.append(box)
                continue
            if line:  # a newline (or the end) closes the span's part on this line
                # OCR boxes are tight and a character's share of a word is estimated: pad
                # sideways by half a character so no stroke of the value's edge stays readable.
                pad_x = BOX_PADDING + (max(b.bottom for b in line) - min(b.top for b in line)) // 2
                out.append(Box(
                    max(0, min(b.left for b in line) - pad_x),
                    max(0, min(b.top for b in line) - BOX_PADDING),
                    min(ocr.width, max(b.right for b in line) + pad_x),
                    min(ocr.height, max(b.bottom for b in line) + BOX_PADDING),
                ))
                line = []
    return out


def _black_out(image: Image.Image, ocr: OcrText, spans: list[tuple[int, int]]) -> None:
    draw = ImageDraw.Draw(image)
    for box in regions(ocr, spans):
        draw.rectangle((box.left, box.top, box.right, box.bottom), fill="black")


def mask(data: bytes, ocr: OcrText, spans: list[tuple[int, int]]) -> bytes:
    """``data`` with black boxes over the characters of ``spans`` (offsets into ``ocr.text``)."""
    image = open_image(data)
    fmt = image.format or ocr.image_format
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA" if fmt in ("PNG", "WEBP") else "RGB")
    _black_out(image, ocr, spans)
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return out.getvalue()


# The review console's thumbnail: big enough to recognise the screen or page, too small to read its
# body text (a 1080p screenshot's 16 px text becomes 3 px); every value found is blacked out first.
THUMBNAIL_SIDE = 320
THUMBNAIL_TYPE = "image/jpeg"


def thumbnail(data: bytes, ocr: OcrText, spans: list[tuple[int, int]]) -> bytes:
    """A JPEG at most ``THUMBNAIL_SIDE`` pixels a side of ``data`` with ``spans`` blacked out."""
    image = open_image(data).convert("RGB")
    _black_out(image, ocr, spans)  # at full size: the boxes are in the original's pixels
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=75)
    return out.getvalue()
