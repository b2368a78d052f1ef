"""``guard explain --image``: what OCR read in an image, the candidates in it, and the masked image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.images import read_text
from tests.cli.test_scan_contract import run
from tests.ocr.render import cjk_font_path, png_bytes, render_lines

pytestmark = pytest.mark.skipif(cjk_font_path() is None,
                                reason="no CJK font (apt-get install fonts-noto-cjk)")


def test_explain_image_shows_the_ocr_text_candidates_and_writes_the_masked_image(tmp_path: Path) -> None:
    image = tmp_path / "screen.png"
    image.write_bytes(png_bytes(render_lines(["身分證字號：F225837467", "請幫我寫一封通知信。"])))
    masked = tmp_path / "masked.png"
    done = run(["explain", "--image", str(image), "--masked-out", str(masked)])
    assert done.returncode == 0, done.stderr
    assert "OCR text:" in done.stdout and "F225837467" in done.stdout
    assert "TW_NATIONAL_ID" in done.stdout and "decision: redact" in done.stdout
    after = read_text(masked.read_bytes()).text
    assert "F225837467" not in after and "通知信" in after

    done = run(["explain", "--image", str(image), "--json"])
    report = json.loads(done.stdout)
    assert report["image"]["format"] == "PNG" and report["decision"] == "redact"
    assert [c["entity_type"] for c in report["candidates"]] == ["TW_NATIONAL_ID"]


def test_explain_image_that_is_not_an_image_exits_1(tmp_path: Path) -> None:
    bogus = tmp_path / "not.png"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    done = run(["explain", "--image", str(bogus)])
    assert done.returncode == 1 and "not a readable image" in done.stderr


@pytest.mark.parametrize(("rule", "lines", "outcome"), [
    ("mask", ["身分證字號：F225837467", "請幫我寫一封通知信。"], "masked"),
    ("block", ["身分證字號：F225837467", "請幫我寫一封通知信。"], "blocked"),
    ("block", ["今天天氣很好，我們去公園散步。"], "unchanged"),   # a clean image passes either way
    ("mask", ["【機密】", "主旨：本署明年度預算編列原則，請研議。"], "blocked"),  # a marking always blocks
])
def test_explain_image_follows_the_policys_images_rule(tmp_path: Path, rule: str, lines: list[str],
                                                        outcome: str) -> None:
    policy = tmp_path / "agency.yaml"
    policy.write_text(f"extends: default\nimages:\n  personal_data: {rule}\n", encoding="utf-8")
    image = tmp_path / "screen.png"
    image.write_bytes(png_bytes(render_lines(lines)))
    masked = tmp_path / "masked.png"
    done = run(["explain", "--policy", str(policy), "--image", str(image), "--masked-out", str(masked)])
    assert done.returncode == 0, done.stderr
    assert f"image: {outcome} (policy images.personal_data: {rule})" in done.stdout
    assert masked.exists() == (outcome != "blocked")
    report = json.loads(run(["explain", "--policy", str(policy), "--image", str(image), "--json"]).stdout)
    assert report["image"]["outcome"] == outcome and report["image"]["personal_data_rule"] == rule
