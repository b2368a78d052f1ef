"""guard.image_parts: inline images found by shape in OpenAI, Anthropic and Gemini bodies; masks go back."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from guard.engine import Engine
from guard.formats import format_for
from guard.formats.base import NotRewritable, UnreadableContent
from guard.formats.multipart import parse
from guard.image_parts import covers, images_in_body, images_in_request, masked_images, with_images
from guard.images import read_text
from guard.policy import load_policy
from tests.ocr.render import cjk_font_path, png_bytes, render_lines

PNG = b"\x89PNG\r\n\x1a\n fake bytes: only the shape matters here"
B64 = base64.b64encode(PNG).decode()
SVG = base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'><text>A123456789</text></svg>").decode()


def _openai(url: str) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "這張圖寫了什麼？"},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}]}


def _anthropic(data: str, media_type: str = "image/png") -> dict[str, Any]:
    return {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}},
        {"type": "text", "text": "這張圖寫了什麼？"}]}]}


def _gemini(data: str, key: str = "inlineData", mime: str = "mimeType") -> dict[str, Any]:
    parts = [{"text": "這張圖寫了什麼？"}, {key: {mime: "image/png", "data": data}}]
    return {"contents": [{"role": "user", "parts": parts}]}


@pytest.mark.parametrize(("api", "doc", "where", "data_url"), [
    ("openai", _openai(f"data:image/png;base64,{B64}"), "messages[0].content[1].image_url.url", True),
    ("anthropic", _anthropic(B64), "messages[0].content[0].source.data", False),
    ("gemini", _gemini(B64), "contents[0].parts[1].inlineData.data", False),
    ("gemini", _gemini(B64, "inline_data", "mime_type"), "contents[0].parts[1].inline_data.data", False),
])
def test_inline_images_are_found_and_cover_what_the_format_left_uninspected(
        api: str, doc: dict[str, Any], where: str, data_url: bool) -> None:
    body = json.dumps(doc).encode()
    images = images_in_body(body)
    found = [(i.where, i.media_type, i.data, i.data_url) for i in images]
    assert found == [(where, "image/png", PNG, data_url)]
    parsed = format_for(api).extract(body, "application/json", "/")
    assert parsed.uninspected and all(covers(images, u) for u in parsed.uninspected)


@pytest.mark.parametrize("doc", [
    _openai("https://example.org/cat.png"),           # a remote image: not read here, stays uninspected
    _anthropic(base64.b64encode(b"%PDF-1.7 a document").decode(), media_type="application/pdf"),
    _openai("data:image/svg+xml;base64," + SVG),       # a type the OCR does not read
    {"note": "data:text/plain;base64,aGVsbG8="},
    {"token": "iVBORw0KGgo is how a PNG's base64 begins"},   # not base64 as a whole
    {"short": "iVBORw0KGgo="},                                # too short to be an image file
])
def test_what_is_not_an_inline_image_of_a_readable_type_is_not_taken(doc: dict[str, Any]) -> None:
    assert images_in_body(json.dumps(doc).encode()) == []


@pytest.mark.parametrize(("doc", "where", "media_type"), [
    # A web app's own JSON: a bare base64 field, found by the image's magic number.
    ({"attachment": {"name": "screen.png", "content": B64}}, "attachment.content", "image/png"),
    ({"files": [{"bytes": base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 60).decode()}]},
     "files[0].bytes", "image/jpeg"),
    # A declared type can lie: PNG bytes under a PDF's media type are read as the image they are.
    (_anthropic(B64, media_type="application/pdf"), "messages[0].content[0].source.data", "image/png"),
    ({"file": f"data:application/octet-stream;base64,{B64}"}, "file", "image/png"),
    ({"file": f"data:application/octet-stream;name=x.png;base64,{B64}"}, "file", "image/png"),
])
def test_base64_images_in_any_json_field_are_found(doc: dict[str, Any], where: str,
                                                   media_type: str) -> None:
    images = images_in_body(json.dumps(doc).encode())
    assert [(i.where, i.media_type, i.data) for i in images] == [(where, media_type, images[0].data)]
    assert images[0].data.startswith((b"\x89PNG", b"\xff\xd8\xff"))


@pytest.mark.skipif(cjk_font_path() is None, reason="no CJK font (apt-get install fonts-noto-cjk)")
@pytest.mark.parametrize(("api", "make"), [
    ("openai", lambda b64: _openai(f"data:image/png;base64,{b64}")),
    ("anthropic", _anthropic),
    ("gemini", _gemini),
])
def test_redacted_request_carries_the_masked_image(api: str, make) -> None:  # type: ignore[no-untyped-def]
    engine = Engine(load_policy(None))
    image = png_bytes(render_lines(["申請人：王小明", "身分證字號：F225837467", "請幫我寫一封通知信。"]))
    body = json.dumps(make(base64.b64encode(image).decode())).encode()
    fmt = format_for(api)
    parsed = fmt.extract(body, "application/json", "/")
    images = images_in_body(body)
    ocr = [read_text(i.data) for i in images]
    verdict = engine.inspect_segments(parsed.texts + tuple(o.text for o in ocr))
    assert verdict.decision.value == "redact"
    masked = masked_images(images, ocr, verdict.findings, len(parsed.segments), lambda f: True)
    request = with_images(parsed, images, ocr, masked)
    assert request.uninspected == ()
    assert request.texts[-1] == ocr[0].text  # the image's text is a segment of the request
    sent = fmt.rewrite(request, verdict.redacted)
    forwarded = images_in_body(sent)
    assert len(forwarded) == 1 and forwarded[0].data != image
    after = "".join(read_text(forwarded[0].data).text.split())
    assert "F225837467" not in after and "王小明" not in after
    assert "請幫我寫一封通知信" in after
    assert "這張圖寫了什麼" in sent.decode()  # the text parts are untouched


def _multipart(filename: str, media_type: str, data: bytes) -> tuple[bytes, str]:
    boundary = "guard-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {media_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _scanned_pdf(lines: list[str]) -> bytes:
    out = io.BytesIO()
    render_lines(lines, size=30).save(out, format="PDF")  # a page that is only an image: no text layer
    return out.getvalue()


@pytest.mark.skipif(cjk_font_path() is None, reason="no CJK font (apt-get install fonts-noto-cjk)")
@pytest.mark.parametrize(("lines", "read", "decision", "rewritable"), [
    (["今天天氣很好，我們去公園散步。"], "今天天氣很好", "allow", True),
    (["申請人：王小明", "身分證字號：F225837467"], "F225837467", "redact", False),
])
def test_scanned_pdf_pages_are_read_and_a_pdf_with_personal_data_cannot_be_rewritten(
        lines: list[str], read: str, decision: str, rewritable: bool) -> None:
    engine = Engine(load_policy(None))
    body, content_type = _multipart("scan.pdf", "application/pdf", _scanned_pdf(lines))
    fmt = format_for("openai")
    parsed = fmt.extract(body, content_type, "/v1/files")
    assert parsed.uninspected == ("files[1](.pdf)",)
    images = images_in_request(body, content_type, parsed.uninspected)
    assert [i.where for i in images] == ["files[1](.pdf)[page 1]"]
    ocr = [read_text(i.data) for i in images]
    assert read in ocr[0].text
    verdict = engine.inspect_segments(parsed.texts + tuple(o.text for o in ocr))
    assert verdict.decision.value == decision
    masked = masked_images(images, ocr, verdict.findings, len(parsed.segments), lambda f: True)
    request = with_images(parsed, images, ocr, masked, content_type)
    assert request.uninspected == ()
    if rewritable:
        assert fmt.rewrite(request, verdict.redacted) is body
    else:
        with pytest.raises(NotRewritable):
            fmt.rewrite(request, verdict.redacted)


@pytest.mark.skipif(cjk_font_path() is None, reason="no CJK font (apt-get install fonts-noto-cjk)")
def test_image_file_in_a_multipart_upload_is_masked_in_place() -> None:
    engine = Engine(load_policy(None))
    image = png_bytes(render_lines(["申請人：王小明", "身分證字號：F225837467", "請幫我寫一封通知信。"]))
    body, content_type = _multipart("photo.png", "image/png", image)
    fmt = format_for("openai")
    parsed = fmt.extract(body, content_type, "/v1/files")
    images = images_in_request(body, content_type, parsed.uninspected)
    ocr = [read_text(i.data) for i in images]
    verdict = engine.inspect_segments(parsed.texts + tuple(o.text for o in ocr))
    masked = masked_images(images, ocr, verdict.findings, len(parsed.segments), lambda f: True)
    sent = fmt.rewrite(with_images(parsed, images, ocr, masked, content_type), verdict.redacted)
    part = next(p for p in parse(sent, content_type).parts if p.filename)
    after = "".join(read_text(part.payload).text.split())
    assert "F225837467" not in after and "王小明" not in after and "請幫我寫一封通知信" in after
    assert sent.startswith(body[:body.index(b"\x89PNG")])  # the form field and part headers are kept


def test_too_many_images_in_one_request_are_unreadable() -> None:
    doc = {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}}] * 21}]}
    with pytest.raises(UnreadableContent, match="21 images"):
        images_in_request(json.dumps(doc).encode(), "application/json", ())


def test_with_images_keeps_the_rest_of_the_body_and_writes_it_back() -> None:
    """The generic walk's strings (``extra``) are inspected after the image texts and written back too."""
    from guard.images import OcrText

    doc = {**_openai(f"data:image/png;base64,{B64}"), "user": "A123456789"}
    body = json.dumps(doc).encode()
    fmt = format_for("openai")
    parsed = fmt.extract(body, "application/json", "/v1/chat/completions")
    assert any("A123456789" in s.text for s in parsed.extra)
    images = images_in_body(body)
    ocr = [OcrText("沒有文字", (None,) * 4, 1, 1, "PNG")]
    request = with_images(parsed, images, ocr, [None], "application/json")
    assert request.extra == parsed.extra
    assert request.all_segments == (*parsed.segments, request.segments[-1], *parsed.extra)
    assert fmt.rewrite(request, request.texts) is body  # nothing changed
    new = [s.text.replace("A123456789", "<ID>") for s in request.all_segments]
    out = json.loads(fmt.rewrite(request, new))
    assert out["user"] == "<ID>"
    assert out["messages"][0]["content"][1]["image_url"]["url"] == f"data:image/png;base64,{B64}"
