"""Images outside the AI APIs' shapes, through the running proxy, and the policy's images rule.

A web app that sends the file's bytes as the request body, or a base64 image in a JSON field of its
own: read with OCR like any image, masked in place (the values cannot be read back from what
arrives), a scanned PDF with personal data blocked (a PDF cannot be masked), a body that claims to be
an image but cannot be read blocked. Under ``images: {personal_data: block}`` an image with
personal data never leaves and a clean one still arrives byte for byte.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard.image_parts import images_in_body
from tests.e2e.conftest import _server
from tests.e2e.helpers import (
    CurlResult,
    GuardProxy,
    assert_block_message,
    assert_never_sent,
    curl,
    nonce,
    write_policy,
)
from tests.e2e.test_images import CLEAN_LINES, PII_LINES, PII_VALUES, _readable, _send
from tests.e2e.upstream import UpstreamServer
from tests.ocr.render import cjk_font_path, png_bytes, render_lines, scanned

pytestmark = [pytest.mark.skipif(cjk_font_path() is None,
                                 reason="no CJK font (apt-get install fonts-noto-cjk)"),
              pytest.mark.usefixtures("curl_available")]


@pytest.fixture(scope="module")
def webapp_upstream(upstream_cert: tuple[Path, Path]) -> Iterator[UpstreamServer]:
    """A web app catalogued with the generic format: its own upload shapes, no known API."""
    yield from _server(upstream_cert)


def _proxy(directory: Path, services: dict[str, tuple[str, UpstreamServer]],
           images: str) -> Iterator[GuardProxy]:
    policy = write_policy(directory / "policy.yaml", services)
    with policy.open("a", encoding="utf-8") as f:
        f.write(f"images:\n  personal_data: {images}\n")
    proxy = GuardProxy(confdir=directory, policy=policy, log_path=directory / "proxy.log",
                       options=("guard_timeout=60",))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def masking_proxy(tmp_path_factory: pytest.TempPathFactory,
                  webapp_upstream: UpstreamServer) -> Iterator[GuardProxy]:
    yield from _proxy(tmp_path_factory.mktemp("guard-images-mask"),
                      {"e2e-webapp": ("generic", webapp_upstream)}, "mask")


@pytest.fixture(scope="module")
def blocking_proxy(tmp_path_factory: pytest.TempPathFactory, webapp_upstream: UpstreamServer,
                   openai_upstream: UpstreamServer) -> Iterator[GuardProxy]:
    yield from _proxy(tmp_path_factory.mktemp("guard-images-block"),
                      {"e2e-webapp": ("generic", webapp_upstream), "e2e-openai": ("openai", openai_upstream)},
                      "block")


def _pdf(lines: list[str]) -> bytes:
    out = io.BytesIO()
    render_lines(lines, size=40).save(out, format="PDF")  # pages that are only images: no text layer
    return out.getvalue()


def _upload(proxy: GuardProxy, server: UpstreamServer, tag: str, body: bytes,
            content_type: str) -> CurlResult:
    return curl(proxy, f"{server.base_url}/api/attachments/{tag}", body, {"content-type": content_type})


@pytest.mark.parametrize("content_type", ["image/png", "application/octet-stream"])
def test_raw_body_image_is_masked_in_place(masking_proxy: GuardProxy, webapp_upstream: UpstreamServer,
                                           content_type: str) -> None:
    tag = nonce()
    reply = _upload(masking_proxy, webapp_upstream, tag, png_bytes(render_lines(PII_LINES)), content_type)
    assert reply.status == 200, reply.body[:300]
    received = webapp_upstream.received(tag)
    assert len(received) == 1 and received[0].body.startswith(b"\x89PNG")
    after = _readable(received[0].body)
    for value in PII_VALUES:
        assert value not in after
    assert "請幫我寫一封通知信" in after  # the rest of the screenshot still helps the user


def test_raw_body_clean_image_arrives_byte_for_byte(masking_proxy: GuardProxy,
                                                    webapp_upstream: UpstreamServer) -> None:
    tag = nonce()
    image = png_bytes(render_lines(CLEAN_LINES))
    assert _upload(masking_proxy, webapp_upstream, tag, image, "image/png").status == 200
    received = webapp_upstream.received(tag)
    assert len(received) == 1 and received[0].body == image


def test_base64_image_in_a_json_field_of_the_apps_own_is_masked(masking_proxy: GuardProxy,
                                                                  webapp_upstream: UpstreamServer) -> None:
    tag = nonce()
    image = png_bytes(scanned(render_lines(PII_LINES, size=30)), "JPEG")
    body = json.dumps({"note": f"{tag} 附件", "attachment": {"name": "screen.jpg",
                                                            "content": base64.b64encode(image).decode()}})
    reply = _upload(masking_proxy, webapp_upstream, tag, body.encode(), "application/json")
    assert reply.status == 200, reply.body[:300]
    received = webapp_upstream.received(tag)
    assert len(received) == 1
    forwarded = images_in_body(received[0].decoded())
    assert [i.where for i in forwarded] == ["attachment.content"] and forwarded[0].data != image
    after = _readable(forwarded[0].data)
    for value in PII_VALUES:
        assert value not in after
    assert json.loads(received[0].decoded())["note"] == f"{tag} 附件"


@pytest.mark.parametrize(("lines", "forwarded"), [
    pytest.param(CLEAN_LINES, True, id="clean scan goes out unchanged"),
    pytest.param(PII_LINES, False, id="scan with personal data is blocked (a PDF cannot be masked)"),
])
def test_raw_body_scanned_pdf(masking_proxy: GuardProxy, webapp_upstream: UpstreamServer,
                              lines: list[str], forwarded: bool) -> None:
    tag = nonce()
    pdf = _pdf(lines)
    reply = _upload(masking_proxy, webapp_upstream, tag, pdf, "application/pdf")
    if forwarded:
        assert reply.status == 200, reply.body[:300]
        received = webapp_upstream.received(tag)
        assert len(received) == 1 and received[0].body == pdf
    else:
        assert reply.status == 403
        assert_block_message(reply.json()["error"]["message"])
        assert_never_sent(webapp_upstream, tag)


@pytest.mark.parametrize(("body", "content_type"), [
    pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", id="corrupt PNG"),
    pytest.param(b"%PDF-1.7\n" + b"\x00" * 64, "application/pdf", id="corrupt PDF"),
    pytest.param(json.dumps({"file": "iVBORw0KGgo" + "A" * 120}).encode(), "application/json",
                 id="base64 that claims to be a PNG"),
])
def test_what_claims_to_be_an_image_but_cannot_be_read_never_leaves(
        masking_proxy: GuardProxy, webapp_upstream: UpstreamServer, body: bytes, content_type: str) -> None:
    tag = nonce()
    reply = _upload(masking_proxy, webapp_upstream, tag, body, content_type)
    assert reply.status == 403, reply.body[:300]
    assert_never_sent(webapp_upstream, tag)


# ---------------------------------------------------------------- images: {personal_data: block}

def test_block_rule_stops_an_image_with_personal_data_from_an_sdk(
        client_python: str, blocking_proxy: GuardProxy, openai_upstream: UpstreamServer,
        tmp_path: Path) -> None:
    image = tmp_path / "query-screen.png"
    image.write_bytes(png_bytes(render_lines(PII_LINES)))
    tag = nonce()
    result = _send(client_python, blocking_proxy, openai_upstream, "openai", image, f"{tag} 請整理")
    assert result.get("error", {}).get("class") == "PermissionDeniedError", result
    assert_block_message(result["error"]["body"]["message"])
    assert_never_sent(openai_upstream, tag)


def test_block_rule_stops_a_raw_body_image_and_lets_a_clean_one_through(
        blocking_proxy: GuardProxy, webapp_upstream: UpstreamServer) -> None:
    tag = nonce()
    reply = _upload(blocking_proxy, webapp_upstream, tag, png_bytes(render_lines(PII_LINES)), "image/png")
    assert reply.status == 403
    assert_never_sent(webapp_upstream, tag)
    tag = nonce()
    clean = png_bytes(render_lines(CLEAN_LINES))
    assert _upload(blocking_proxy, webapp_upstream, tag, clean, "image/png").status == 200
    assert [r.body for r in webapp_upstream.received(tag)] == [clean]


def test_block_rule_leaves_text_prompts_to_redaction(blocking_proxy: GuardProxy,
                                                     openai_upstream: UpstreamServer) -> None:
    """The images rule is about images: a text prompt with an ID is still redacted and sent."""
    tag = nonce()
    body = json.dumps({"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": f"{tag} 身分證字號F225837467，請寫通知信。"}]}).encode()
    reply = curl(blocking_proxy, f"{openai_upstream.base_url}/v1/chat/completions", body,
                 {"content-type": "application/json"})
    assert reply.status == 200, reply.body[:300]
    (received,) = openai_upstream.received(tag)
    assert "F225837467" not in received.text and "<TW_NATIONAL_ID_1>" in received.text
