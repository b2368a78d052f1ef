"""OCR cost per image, side by side: 1080p and 4K screenshots, a small chat screenshot, a scanned page.

Usage: ``.venv/bin/python deploy/bench_ocr.py [--repeat 3]``

For each image: the time to read it (guard.images.read_text, Tesseract in this process with one
thread, as in an inspection worker), the time to inspect its text, to black out what was found and
to make the console's masked thumbnail (and its size), and whether OCR read every planted value.
Images are rendered here (tests/ocr/render.py) with the Noto CJK font from Debian; nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from guard.engine import Engine  # noqa: E402
from guard.images import mask, read_text, thumbnail  # noqa: E402
from guard.policy import load_policy  # noqa: E402
from tests.ocr.render import png_bytes, render_lines, scanned, screen_1080p  # noqa: E402

LINES = ["姓名：王小明　　身分證字號：F225837467", "戶籍地址：臺中市西屯區福星路338巷12號5樓",
         "出生日期：民國74年5月3日　　聯絡電話：0936-218-457", "車牌號碼：BXN-7265　車主：陳志豪",
         "帳號：822-123456789012", "備註：請於三日內回覆查詢結果。"]
VALUES = ["F225837467", "王小明", "福星路338巷12號5樓", "0936-218-457", "BXN-7265", "陳志豪"]


def screen_4k() -> Image.Image:
    return screen_1080p(LINES).resize((3840, 2160), Image.Resampling.LANCZOS)


# (name, the lines drawn, how the image is made)
IMAGES: list[tuple[str, list[str], Callable[[], Image.Image]]] = [
    ("1080p query screen (1920x1080)", LINES, lambda: screen_1080p(LINES)),
    ("4K query screen (3840x2160)", LINES, screen_4k),
    ("chat screenshot (~800x150)", LINES[:3], lambda: render_lines(LINES[:3], size=22)),
    ("scanned page (A4-ish, grey)", LINES, lambda: scanned(render_lines(LINES, size=34, width=1600))),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    engine = Engine(load_policy(None))
    engine.warm_up()
    print(f"{'image':34} {'pixels':>9} {'OCR s':>7} {'inspect s':>10} {'mask s':>7} {'thumb s':>8} "
          f"{'thumb KB':>8}  values read")
    for name, lines, make in IMAGES:
        data = png_bytes(make())
        ocr_times, inspect_times, mask_times, thumb_times = [], [], [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            ocr = read_text(data, timeout=120)
            t1 = time.perf_counter()
            verdict = engine.inspect(ocr.text)
            t2 = time.perf_counter()
            spans = [(f.start, f.end) for f in verdict.findings]
            mask(data, ocr, spans)
            t3 = time.perf_counter()
            small = thumbnail(data, ocr, spans)  # the console's masked thumbnail, kept with the event
            t4 = time.perf_counter()
            ocr_times.append(t1 - t0)
            inspect_times.append(t2 - t1)
            mask_times.append(t3 - t2)
            thumb_times.append(t4 - t3)
        compact = "".join(ocr.text.split())
        planted = [v for v in VALUES if v in "".join("".join(lines).split())]
        read = sum(v in compact for v in planted)
        print(f"{name:34} {ocr.width * ocr.height / 1e6:>8.1f}M {statistics.median(ocr_times):>7.2f} "
              f"{statistics.median(inspect_times):>10.3f} {statistics.median(mask_times):>7.3f} "
              f"{statistics.median(thumb_times):>8.3f} {len(small) / 1024:>8.1f}  {read}/{len(planted)}")


if __name__ == "__main__":
    main()
