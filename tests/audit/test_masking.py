from __future__ import annotations

import pytest

from guard.audit.events import EventKind, InspectionEvent
from guard.audit.masking import FoundAt, mask_text, mask_url, mask_value, snippets


@pytest.mark.parametrize(("entity_type", "value", "masked"), [
    ("TW_NATIONAL_ID", "A123456789", "A12*****89"),
    ("TW_RESIDENT_ID", "A812345678", "A81*****78"),
    ("PHONE_NUMBER", "0912-345-678", "091*-***-*78"),
    ("PHONE_NUMBER", "+886 912 345 678", "+886 *** *** *78"),
    ("TW_LICENSE_PLATE", "ABC-1234", "A**-***4"),
    ("PERSON", "陳小明", "陳○明"),
    ("PERSON", "歐陽志明", "歐○○明"),
    ("PERSON", "王明", "王○"),
    ("PERSON", "John Smith", "J*** ****h"),
    ("EMAIL_ADDRESS", "chen.ming@agency.gov.tw", "c********@agency.gov.tw"),
    ("CLASSIFICATION_MARKER", "機密", "機密"),
    ("TW_UBN", "1234", "****"),
])
def test_masks_keep_length_and_hide_the_middle(entity_type: str, value: str, masked: str) -> None:
    assert mask_value(entity_type, value) == masked
    assert len(mask_value(entity_type, value)) == len(value)


def test_masked_text_keeps_every_offset() -> None:
    text = "陳小明的身分證 A123456789，電話 0912345678"
    found = [FoundAt("PERSON", 0, 0, 3, 0.85, "redact"), FoundAt("TW_NATIONAL_ID", 0, 8, 18, 1.0, "redact"),
             FoundAt("PHONE_NUMBER", 0, 22, 32, 0.9, "redact")]
    masked = mask_text(text, found)
    assert masked == "陳○明的身分證 A12*****89，電話 091*****78"
    for raw in ("陳小明", "A123456789", "0912345678"):
        assert raw not in masked


def test_snippets_are_windows_around_findings_merged_when_they_overlap() -> None:
    text = "x" * 100 + "A123456789" + "y" * 10 + "0912345678" + "z" * 100
    found = [FoundAt("TW_NATIONAL_ID", 0, 100, 110, 1.0, "redact"),
             FoundAt("PHONE_NUMBER", 0, 120, 130, 0.9, "warn")]
    [one] = snippets([text], found, window=24)
    assert one["cut_before"] and one["cut_after"]
    assert one["text"] == "x" * 24 + "A12*****89" + "y" * 10 + "091*****78" + "z" * 24
    spans = [(f["entity_type"], one["text"][f["start"]:f["end"]], f["action"]) for f in one["findings"]]
    assert spans == [("TW_NATIONAL_ID", "A12*****89", "redact"), ("PHONE_NUMBER", "091*****78", "warn")]


def test_snippets_per_segment_and_far_apart_findings_stay_separate() -> None:
    texts = ["A123456789" + "-" * 200 + "F131104093", "nothing here"]
    found = [FoundAt("TW_NATIONAL_ID", 0, 0, 10, 1.0, "redact"),
             FoundAt("TW_NATIONAL_ID", 0, 210, 220, 1.0, "redact")]
    parts = snippets(texts, found, window=5)
    assert [p["text"] for p in parts] == ["A12*****89-----", "-----F13*****93"]
    assert [(p["cut_before"], p["cut_after"]) for p in parts] == [(False, True), (True, False)]


# Request paths and URLs as the proxy sees them: API words stay readable, anything a user could have
# put in the address is masked like a snippet's finding, whatever its encoding.
@pytest.mark.parametrize(("url", "masked", "hidden"), [
    ("/v1/chat/completions", "/v1/chat/completions", ""),
    ("/v1beta/models/gemini-1.5-pro:generateContent?alt=sse",
     "/v1beta/models/gemini-1.5-pro:generateContent?alt=sse", ""),
    ("/api/users/A123456789/history", "/api/users/A12*****89/history", "A123456789"),
    ("/lookup?phone=0912345678&stream=true", "/lookup?phone=091*****78&stream=true", "0912345678"),
    ("/p?name=%E9%99%B3%E5%B0%8F%E6%98%8E", "/p?name=陳○明", "陳小明"),
    ("/p/%E9%99%B3%E5%B0%8F%E6%98%8E/x", "/p/陳○明/x", "陳小明"),
    ("/p/陳小明", "/p/陳○明", "陳小明"),
    ("/search?q=my+name+is+John+Smith", "/search?q=my n*** ** **** ***th", "John Smith"),
    ("/cars/ABC-1234", "/cars/A**-***4", "ABC-1234"),
    ("/u/chen.ming@agency.gov.tw", "/u/che*.****@******.***.tw", "chen.ming"),
    ("/backend-api/conversation/6f1c2d3e-1234-5678-9abc-def012345678",
     "/backend-api/conversation/6f1*****-****-****-****-**********78", "6f1c2d3e"),
    ("/x?key=AIzaSyD-abc123def456", "/x?key=AIz****-**********56", "abc123def456"),
    ("/%09/evil.example", "/%09/evil.example", "\t"),
    ("/a%E2%80%AEb", "/*%E2%80%AE*", "\u202e"),
    ("https://user:secret@chat.example.com:8443/v1/x?id=A123456789#part",
     "https://***@chat.example.com:8443/v1/x?id=A12*****89", "secret"),
    ("http://[::1", "h***://[::1", ""),
])
def test_paths_and_urls_are_masked_like_snippets(url: str, masked: str, hidden: str) -> None:
    shown = mask_url(url)
    assert shown == masked
    if hidden:
        assert hidden not in shown


def test_an_events_path_is_masked_wherever_the_event_goes() -> None:
    event = InspectionEvent(event_id="20261128-000000000000", kind=EventKind.BLOCKED, decision="block",
                            path="/api/citizens/A123456789?name=%E9%99%B3%E5%B0%8F%E6%98%8E")
    assert event.fields()["path"] == "/api/citizens/A12*****89?name=陳○明"


def test_values_a_recognizer_found_in_the_url_are_masked_even_when_they_look_like_words() -> None:
    url = "https://chat.example.com/u/chen-xiaoming/history?owner=chen-xiaoming&stream=true"
    assert mask_url(url) == url  # letters only: reads as an API word
    masked = mask_url(url, found={"chen-xiaoming"})
    assert "chen-xiaoming" not in masked and masked.endswith("&stream=true")
    assert masked.startswith("https://chat.example.com/u/che")
