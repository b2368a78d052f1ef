"""Images through the running proxy: the official SDKs, curl for Gemini and a multipart upload.

The forwarded image is read back with OCR in the test: the personal values must be gone from it,
the rest of the screenshot must still read, a clean image must arrive byte for byte, and an image
with a classification marking (or one that cannot be read) must never leave.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.formats.multipart import parse
from guard.image_parts import images_in_body
from guard.images import read_text
from tests.e2e.conftest import _guard_proxy
from tests.e2e.helpers import GuardProxy, assert_block_message, assert_never_sent, curl, nonce, run_client
from tests.e2e.upstream import UpstreamServer
from tests.ocr.render import cjk_font_path, png_bytes, render_lines, scanned

pytestmark = pytest.mark.skipif(cjk_font_path() is None,
                                reason="no CJK font (apt-get install fonts-noto-cjk)")

PII_LINES = [
    "承辦人林育賢", "身分證字號：F225837467", "住址：臺北市中正區重慶南路一段122號", "請幫我寫一封通知信。",
]
PII_VALUES = ("林育賢", "F225837467", "重慶南路一段122號")
CLEAN_LINES = ["今天天氣很好，我們去公園散步。", "會議紀錄請於週五前送交秘書室。"]
MARKED_LINES = ["【機密】", "主旨：本署明年度預算編列原則，請研議。"]
SDKS = [pytest.param("openai", "openai_upstream", id="openai"),
        pytest.param("anthropic", "anthropic_upstream", id="anthropic")]
GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:generateContent"


@pytest.fixture(scope="module")
def image_proxy(tmp_path_factory: pytest.TempPathFactory,
                catalogue: dict[str, tuple[str, UpstreamServer]]) -> Iterator[GuardProxy]:
    """The default policy; a time limit that leaves OCR room on a busy two-core machine."""
    yield from _guard_proxy(tmp_path_factory.mktemp("guard-images"), catalogue, ("guard_timeout=60",))


def _send(client_python: str, proxy: GuardProxy, server: UpstreamServer, sdk: str, image: Path,
          prompt: str) -> dict[str, Any]:
    return run_client(client_python, "image_client.py", "--sdk", sdk, "--image", str(image),
                      "--proxy", proxy.url, "--ca", str(proxy.ca), "--base-url", server.base_url,
                      "--prompt", prompt, timeout=180)


def _forwarded_image(server: UpstreamServer, tag: str) -> bytes:
    received = server.received(tag)
    assert len(received) == 1
    images = images_in_body(received[0].decoded())
    assert len(images) == 1
    return images[0].data


def _readable(data: bytes) -> str:
    return "".join(read_text(data).text.split())


@pytest.mark.parametrize(("sdk", "upstream"), SDKS)
@pytest.mark.parametrize("scan", [pytest.param(False, id="screenshot"), pytest.param(True, id="scanned")])
def test_personal_data_in_an_image_is_blacked_out_upstream(
        request: pytest.FixtureRequest, client_python: str, image_proxy: GuardProxy, tmp_path: Path,
        sdk: str, upstream: str, scan: bool) -> None:
    server: UpstreamServer = request.getfixturevalue(upstream)
    picture = render_lines(PII_LINES, size=30 if scan else 28)
    image = tmp_path / "query-screen.png"
    image.write_bytes(png_bytes(scanned(picture) if scan else picture))
    tag = nonce()
    result = _send(client_python, image_proxy, server, sdk, image, f"{tag} 請把圖中的資料整理成公文")
    assert "error" not in result, result
    after = _readable(_forwarded_image(server, tag))
    for value in PII_VALUES:
        assert value not in after
    assert "請幫我寫一封通知信" in after  # the rest of the screenshot still helps the user


@pytest.mark.parametrize(("sdk", "upstream"), SDKS)
def test_clean_image_arrives_byte_for_byte(request: pytest.FixtureRequest, client_python: str,
                                           image_proxy: GuardProxy, tmp_path: Path, sdk: str,
                                           upstream: str) -> None:
    server: UpstreamServer = request.getfixturevalue(upstream)
    image = tmp_path / "notes.png"
    image.write_bytes(png_bytes(render_lines(CLEAN_LINES)))
    tag = nonce()
    result = _send(client_python, image_proxy, server, sdk, image, f"{tag} 請摘要這張圖")
    assert "error" not in result, result
    received = server.received(tag)
    assert len(received) == 1 and received[0].body == base64.b64decode(result["sent"])
    assert _forwarded_image(server, tag) == image.read_bytes()


@pytest.mark.parametrize(("sdk", "upstream"), SDKS)
@pytest.mark.parametrize(("lines", "data"), [
    pytest.param(MARKED_LINES, None, id="classification marking"),
    pytest.param(None, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, id="unreadable image"),
])
def test_marked_or_unreadable_image_never_leaves(request: pytest.FixtureRequest, client_python: str,
                                                 image_proxy: GuardProxy, tmp_path: Path, sdk: str,
                                                 upstream: str, lines: list[str] | None,
                                                 data: bytes | None) -> None:
    server: UpstreamServer = request.getfixturevalue(upstream)
    image = tmp_path / "page.png"
    image.write_bytes(data if data is not None else png_bytes(render_lines(lines or [])))
    tag = nonce()
    result = _send(client_python, image_proxy, server, sdk, image, f"{tag} 請潤飾這份公文")
    assert result.get("error", {}).get("class") == "PermissionDeniedError", result
    body = result["error"]["body"]  # openai: the error object; anthropic: the whole envelope
    assert_block_message((body.get("error") if isinstance(body.get("error"), dict) else body)["message"])
    assert_never_sent(server, tag)


@pytest.mark.usefixtures("curl_available")
def test_gemini_inline_data_is_masked(image_proxy: GuardProxy, gemini_upstream: UpstreamServer) -> None:
    tag = nonce()
    data = base64.b64encode(png_bytes(render_lines(PII_LINES))).decode()
    body = json.dumps({"contents": [{"role": "user", "parts": [
        {"text": f"{tag} 請整理"}, {"inlineData": {"mimeType": "image/png", "data": data}}]}]}).encode()
    reply = curl(image_proxy, f"{gemini_upstream.base_url}{GEMINI_PATH}?key=e2e", body,
                 {"content-type": "application/json"})
    assert reply.status == 200, reply.body[:300]
    after = _readable(_forwarded_image(gemini_upstream, tag))
    for value in PII_VALUES:
        assert value not in after
    assert "請幫我寫一封通知信" in after


@pytest.mark.usefixtures("curl_available")
def test_image_file_in_a_multipart_upload_is_masked(image_proxy: GuardProxy,
                                                     openai_upstream: UpstreamServer, tmp_path: Path) -> None:
    tag = nonce()
    image = tmp_path / f"{tag}.png"
    image.write_bytes(png_bytes(render_lines(PII_LINES)))
    reply = curl(image_proxy, f"{openai_upstream.base_url}/v1/files",
                 form=(f"purpose={tag}", f"file=@{image};type=image/png"))
    assert reply.status == 200, reply.body[:300]
    received = openai_upstream.received(tag)
    assert len(received) == 1
    content_type = received[0].headers["content-type"]
    body = received[0].decoded()
    parts = [p for p in parse(body, content_type).parts if p.filename]
    assert len(parts) == 1
    after = _readable(parts[0].payload)
    for value in PII_VALUES:
        assert value not in after
    assert "請幫我寫一封通知信" in after


@pytest.mark.usefixtures("curl_available")
@pytest.mark.parametrize(("lines", "forwarded"), [
    pytest.param(CLEAN_LINES, True, id="clean scan goes out unchanged"),
    pytest.param(PII_LINES, False, id="scan with personal data is blocked (a PDF cannot be masked)"),
])
def test_scanned_pdf_upload(image_proxy: GuardProxy, openai_upstream: UpstreamServer, tmp_path: Path,
                            lines: list[str], forwarded: bool) -> None:
    tag = nonce()
    pdf = tmp_path / f"{tag}.pdf"
    # Pillow stores the page as a JPEG: at 30 px its artifacts made Tesseract read 請 as 宮青 (a "name").
    render_lines(lines, size=40).save(pdf, format="PDF")  # pages that are only images: no text layer
    reply = curl(image_proxy, f"{openai_upstream.base_url}/v1/files",
                 form=(f"purpose={tag}", f"file=@{pdf};type=application/pdf"))
    if forwarded:
        assert reply.status == 200, reply.body[:300]
        received = openai_upstream.received(tag)
        assert len(received) == 1 and pdf.read_bytes() in received[0].decoded()
    else:
        assert reply.status == 403
        assert_block_message(reply.json()["error"]["message"])
        assert_never_sent(openai_upstream, tag)
