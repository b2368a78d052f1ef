"""The notices: entity names (not values), guideline points, HTML escaping, fail-closed wording."""

from __future__ import annotations

import re

import pytest

from guard.notice import (
    BlockNotice,
    Reason,
    block_page_html,
    confirm_page_html,
    page_headers,
    render_block_page,
    short_message,
)
from guard.verdict import Decision


@pytest.mark.parametrize(("types", "point", "names"), [
    (["TW_NATIONAL_ID", "PERSON", "PERSON"], 4, "身分證統一編號、姓名"),
    (["TW_RESIDENT_ID", "TW_LICENSE_PLATE", "PHONE_NUMBER", "EMAIL_ADDRESS"], 4,
     "居留證統一證號、車牌號碼、電話號碼、電子郵件"),
    (["CLASSIFICATION_MARKER", "PERSON"], 3, "機密等級標示、姓名"),
    # A type nobody named is never shown by its code (staff cannot read CRIMINAL_RECORD).
    (["SOMETHING_NEW"], 4, "其他敏感資料"),
])
def test_short_message(types: list[str], point: int, names: str) -> None:
    notice = BlockNotice.from_entity_types("evt-1", types)
    msg = short_message(notice)
    assert notice.guideline_point == point
    assert names in msg and f"第{point}點" in msg and "evt-1" in msg
    assert "行政院及所屬機關（構）使用生成式 AI 參考指引" in msg
    assert not re.search(r"[A-Z]{2,}_?[A-Z]*", msg.replace("AI", "")), msg  # no entity code shown


@pytest.mark.parametrize("decision", [Decision.BLOCK, Decision.WARN])
def test_a_policy_names_the_types_it_adds(decision: Decision) -> None:
    notice = BlockNotice.from_entity_types("evt-5", ["CRIMINAL_RECORD", "PERSON"], decision,
                                           display_names={"CRIMINAL_RECORD": "前科紀錄"})
    for text in (short_message(notice), block_page_html(notice)):
        assert "前科紀錄、姓名" in text and "CRIMINAL_RECORD" not in text


def test_the_warn_notice_gives_the_reason_syntax_the_proxy_reads() -> None:
    from guard.addon import REASON_IN_TEXT
    from guard.notice import REASON_EXAMPLE, REASON_SYNTAX

    msg = short_message(BlockNotice.from_entity_types("evt-6", ["PERSON"], Decision.WARN))
    assert f"「{REASON_SYNTAX}」" in msg and REASON_EXAMPLE in msg
    # What the notice tells the user to type is what the proxy accepts, on a line of its own.
    assert REASON_IN_TEXT.search(f"請幫我查王小明的地址\n{REASON_EXAMPLE}")
    assert not REASON_IN_TEXT.search(f"請幫我查王小明的地址 {REASON_EXAMPLE}")


@pytest.mark.parametrize("reason", [Reason.UNDECODABLE_BODY, Reason.BODY_TOO_LARGE])
def test_a_failure_retrying_cannot_cure_says_what_to_change_and_offers_no_appeal(reason: Reason) -> None:
    notice = BlockNotice.failure("evt-7", reason)
    for text in (short_message(notice), block_page_html(notice)):
        assert "稍後再試" not in text and "申覆" not in text
        assert "evt-7" in text and "未經過判斷" in text


def test_a_failure_that_may_pass_later_says_so() -> None:
    msg = short_message(BlockNotice.failure("evt-8", Reason.INSPECTION_TIMEOUT))
    assert "稍後再試" in msg


def test_confirm_and_failure_messages() -> None:
    warn = BlockNotice.from_entity_types("evt-2", ["PERSON"], Decision.WARN)
    assert warn.reason_code == Reason.CONFIRM_REQUIRED and "查詢事由" in short_message(warn)
    for reason in (Reason.INSPECTION_FAILED, Reason.INSPECTION_TIMEOUT, Reason.BODY_TOO_LARGE,
                   Reason.UNDECODABLE_BODY):
        msg = short_message(BlockNotice.failure("evt-3", reason))
        assert msg.startswith("【未送出】") and "evt-3" in msg
    assert "無法讀取" in short_message(BlockNotice("evt-4", (), 4, Decision.BLOCK, Reason.UNREADABLE_CONTENT))


def test_block_page_is_escaped_and_explains_the_stakes() -> None:
    notice = BlockNotice.from_entity_types('<script>alert("x")</script>', ["CLASSIFICATION_MARKER"])
    page = block_page_html(notice)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "刑法第132條" in page and "個人資料保護法第41條" in page and "第3點" in page
    assert page.startswith("<!DOCTYPE html>") and 'lang="zh-Hant"' in page


def test_page_csp_allows_exactly_the_inline_style() -> None:
    import base64
    import hashlib
    headers = dict(page_headers())
    page = confirm_page_html(BlockNotice.from_entity_types("e", ["PERSON"], Decision.WARN),
                             '/__guard/confirm?x="1"', 'tok"en')
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)  # type: ignore[union-attr]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert 'value="tok&quot;en"' in page and 'action="/__guard/confirm?x=&quot;1&quot;"' in page
    assert 'name="reason"' in page and "查詢事由" in page


def test_render_block_page_for_the_addon() -> None:
    warn = BlockNotice.from_entity_types("evt-5", ["PERSON"], Decision.WARN)
    page = render_block_page(warn)
    assert dict(page.headers)["content-type"].startswith("text/html")
    assert "查詢事由" in page.body.decode() and "<form" not in page.body.decode()
    assert "<form" in render_block_page(warn, "/__guard/confirm", "t").body.decode()
    failed = render_block_page(BlockNotice.failure("evt-6", Reason.INSPECTION_TIMEOUT)).body.decode()
    assert "檢查逾時" in failed and "evt-6" in failed
