"""multipart uploads through the running proxy: an identifier in any part never reaches the service.

Each row hides a national ID where the old parser did not look (a field name, a file name, ``filename*``,
another part header, the preamble, the epilogue, a part behind ``xboundary=``): the stand-in service
never receives it and the request is recorded as an event. Ambiguous bodies are refused with an event;
clean uploads arrive byte for byte.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.helpers import NATIONAL_ID, CurlResult, GuardProxy, curl, nonce
from tests.e2e.upstream import UpstreamServer
from tests.formats.files import BOUNDARY, form, part

pytestmark = pytest.mark.usefixtures("curl_available")

CT = f"multipart/form-data; boundary={BOUNDARY}"
ENCODED_ID = "".join(f"%{b:02X}" for b in NATIONAL_ID.encode())  # filename*: only decoding shows it


def _purpose(tag: str, boundary: str = BOUNDARY) -> bytes:
    return part('form-data; name="purpose"', f"assistants {tag}".encode(), boundary=boundary)


def _note(boundary: str = BOUNDARY) -> bytes:
    return part('form-data; name="file"; filename="notes.txt"', "請摘要會議紀錄。".encode(),
                "Content-Type: text/plain", boundary=boundary)


def send(proxy: GuardProxy, server: UpstreamServer, body: bytes, content_type: str = CT) -> CurlResult:
    return curl(proxy, f"{server.base_url}/v1/files", body, {"content-type": content_type})


def event_of(proxy: GuardProxy, reply: CurlResult) -> dict[str, Any]:
    """The event whose id the proxy put on its answer (logged as the answer goes out)."""
    event_id = reply.headers["x-guard-event-id"]
    deadline = time.monotonic() + 5
    while True:
        found = [e for e in proxy.events() if e["event_id"] == event_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"no event {event_id}"
            return found[0]
        time.sleep(0.1)


def assert_id_never_sent(server: UpstreamServer, tag: str) -> None:
    for seen in server.received(tag):
        assert NATIONAL_ID.encode() not in seen.body and NATIONAL_ID not in seen.text


def _file(disposition: str, *headers: str) -> bytes:
    return part(f'form-data; name="file"; {disposition}', "請摘要。".encode(), *headers)


ROWS = {
    "field name": lambda tag: (form(_purpose(tag), part(f'form-data; name="{NATIONAL_ID}"', b"1")), CT),
    "file name": lambda tag: (form(_purpose(tag), _file(f'filename="{NATIONAL_ID}.txt"')), CT),
    "filename*": lambda tag: (form(_purpose(tag), _file(f"filename*=UTF-8''{ENCODED_ID}.txt")), CT),
    "part header": lambda tag: (form(_purpose(tag), _file('filename="a.txt"', f"X-Owner: {NATIONAL_ID}")),
                                CT),
    "preamble": lambda tag: (form(_purpose(tag), _note(), preamble=f"身分證 {NATIONAL_ID}\r\n".encode()), CT),
    "epilogue": lambda tag: (form(_purpose(tag), _note(), epilogue=f"身分證 {NATIONAL_ID}\r\n".encode()), CT),
    "xboundary": lambda tag: (
        form(_purpose(tag, "BBB"), part('form-data; name="q"', f"身分證 {NATIONAL_ID}".encode(),
                                        boundary="BBB"), boundary="BBB", preamble=b"--AAA\r\n"),
        "multipart/form-data; xboundary=AAA; boundary=BBB"),
}


@pytest.mark.parametrize("where", list(ROWS))
def test_identifier_in_any_part_never_reaches_the_service(
        guard_proxy: GuardProxy, openai_upstream: UpstreamServer, where: str) -> None:
    tag = nonce()
    body, content_type = ROWS[where](tag)
    assert NATIONAL_ID.encode() in body or ENCODED_ID.encode() in body
    reply = send(guard_proxy, openai_upstream, body, content_type)
    assert reply.status in (200, 403), reply.body
    assert_id_never_sent(openai_upstream, tag)
    event = event_of(guard_proxy, reply)
    assert event["entities"].get("TW_NATIONAL_ID", 0) >= 1
    assert event["decision"] in ("redact", "block")
    assert NATIONAL_ID not in str(event)
    if reply.status == 200:  # redacted in place: the service got the placeholder where the ID was
        (seen,) = openai_upstream.received(tag)
        assert "<TW_NATIONAL_ID_1>" in seen.text


AMBIGUOUS = {
    "two boundaries": lambda tag: (form(_purpose(tag), _note()),
                                   f"multipart/form-data; boundary=AAA; boundary={BOUNDARY}"),
    "bare-LF delimiter": lambda tag: (form(_purpose(tag), part(
        'form-data; name="a"', f"x\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=b\r\n\r\n"
                               f"{NATIONAL_ID}".encode())), CT),
}


@pytest.mark.parametrize("shape", list(AMBIGUOUS))
def test_ambiguous_body_is_refused_with_an_event(guard_proxy: GuardProxy, openai_upstream: UpstreamServer,
                                                 shape: str) -> None:
    tag = nonce()
    body, content_type = AMBIGUOUS[shape](tag)
    reply = send(guard_proxy, openai_upstream, body, content_type)
    assert reply.status == 403
    assert openai_upstream.received(tag) == []
    event = event_of(guard_proxy, reply)
    assert event["decision"] == "error" and event["error"] == "undecodable_body"


def test_clean_upload_with_every_part_arrives_byte_for_byte(guard_proxy: GuardProxy,
                                                             openai_upstream: UpstreamServer) -> None:
    tag = nonce()
    body = form(_purpose(tag), part(f"form-data; name=\"file\"; filename*=UTF-8''{quote('夜市.txt')}",
                                    "請摘要夜市攤位管理辦法。".encode(), "Content-Type: text/plain"),
                preamble=b"This is a multi-part message in MIME format.\r\n", epilogue=b"\r\n")
    reply = send(guard_proxy, openai_upstream, body)
    assert reply.status == 200, reply.body
    (seen,) = openai_upstream.received(tag)
    assert seen.body == body
