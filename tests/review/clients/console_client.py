"""Headless Chromium (Playwright) walks the review console as a reviewer and reports what it saw.

Signs in, filters the event list, opens an event, reveals its evidence with a reason, sets a
disposition, proposes a false positive for the allow-list, opens a hostile event (and its evidence),
views the dashboard, tries the admin page, and signs out. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# What an injected script or element would leave behind, read from the page's own DOM.
INERTNESS = """() => ({
    scripts: document.querySelectorAll('script').length,
    pwned_elements: document.querySelectorAll('#pwned, img').length,
    window_flag: typeof window.pwned !== 'undefined',
    control_tokens: Array.from(document.querySelectorAll('.ctl')).map(e => e.textContent),
    raw_override: document.body.innerText.includes('\\u202e'),
})"""


def rows(page: Page, selector: str, attribute: str) -> list[str]:
    return page.eval_on_selector_all(selector, f"els => els.map(e => e.getAttribute('{attribute}'))")


def texts(page: Page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent)")


def reveal(page: Page, reason: str) -> None:
    page.fill("#reason", reason)
    page.click("#reveal")
    page.wait_for_selector("#evidence", timeout=15_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the console, e.g. http://127.0.0.1:8081")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--name", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--user", required=True, help="the staff member to filter on")
    parser.add_argument("--event", required=True, help="an event with personal data and evidence")
    parser.add_argument("--false-positive", required=True, help="an event whose finding is not personal data")
    parser.add_argument("--hostile", required=True, help="an event whose prompt attacks the page")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    seen: dict[str, Any] = {}
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        # Signed out: sent to the sign-in page, then back to where we were going.
        page.goto(f"{base}/events", timeout=20_000)
        seen["signed_out_url"] = page.url
        page.fill("#name", args.name)
        page.fill("#password", args.password)
        page.click("#sign-in")
        page.wait_for_url(f"{base}/events", timeout=15_000)
        seen["all_total"] = page.text_content("#total")

        # Filter: one user's redactions.
        page.fill("#user", args.user)
        page.select_option("#decision", "redact")
        page.click("#apply")
        page.wait_for_url("**/events?**", timeout=15_000)
        seen["filtered_url"] = page.url
        seen["filtered_total"] = page.text_content("#total")
        seen["filtered_events"] = rows(page, "tr[data-event]", "data-event")

        # One event: masked snippets, then the evidence with a reason, then a disposition.
        page.click(f"a[href='/events/{args.event}']")
        page.wait_for_url(f"**/events/{args.event}", timeout=15_000)
        seen["event_id"] = page.text_content("#event-id")
        seen["marks"] = [[entity, text] for entity, text in zip(
            rows(page, "mark", "data-entity"), texts(page, "mark"), strict=True)]
        reveal(page, "民眾陳情案調查")
        seen["revealed_values"] = texts(page, "#revealed .value")
        page.select_option("#status", "confirmed")
        page.fill("#note", "已通知當事人主管")
        page.click("#save-disposition")
        page.wait_for_url("**done=disposition", timeout=15_000)
        seen["notice"] = page.text_content("#notice")
        seen["current_disposition"] = page.text_content("#current-disposition")
        seen["history"] = rows(page, "#history tr[data-kind]", "data-kind")

        # A false positive: reveal, tick the value, mark it a false positive.
        page.goto(f"{base}/events/{args.false_positive}")
        reveal(page, "確認是否為機關服務專線")
        seen["proposable"] = texts(page, "#revealed .value")
        page.check("input.propose")
        page.select_option("#status", "false_positive")
        page.click("#save-disposition")
        page.wait_for_url("**done=proposed", timeout=15_000)
        seen["proposed_notice"] = page.text_content("#notice")

        # A hostile prompt: its page and its evidence stay inert.
        page.goto(f"{base}/events/{args.hostile}")
        seen["hostile_event"] = page.evaluate(INERTNESS)
        seen["hostile_user"] = page.text_content("#event-user")
        reveal(page, "檢視可疑內容")
        seen["hostile_evidence"] = page.evaluate(INERTNESS)
        seen["hostile_original"] = page.text_content(".original")

        # Dashboard.
        page.goto(f"{base}/dashboard")
        seen["daily_columns"] = len(rows(page, "#daily g[data-day]", "data-day"))
        seen["daily_blocked"] = sum(int(n) for n in rows(page, "#daily g[data-day]", "data-block"))
        seen["daily_redacted"] = sum(int(n) for n in rows(page, "#daily g[data-day]", "data-redact"))
        seen["unusual"] = rows(page, "#unusual tr[data-user]", "data-user")
        seen["entities"] = rows(page, "#by-entity [data-entity]", "data-entity")

        # Drill-down: the latest day's redaction bar, then the blocked total, each to the events behind it.
        bars = page.locator("#daily g[data-day]")
        today = next(bars.nth(i) for i in reversed(range(bars.count()))
                     if int(bars.nth(i).get_attribute("data-redact") or 0))
        seen["bar_redacted"] = int(today.get_attribute("data-redact") or 0)
        today.locator("a.drill:has(rect.redact)").click()
        page.wait_for_url("**/events?**decision=redact**", timeout=15_000)
        seen["bar_url"] = page.url
        seen["bar_total"] = int(page.text_content("#total") or -1)
        page.go_back()
        seen["total_blocked"] = int(page.text_content("#total-block") or -1)
        page.click("#total-block")
        page.wait_for_url("**/events?**decision=block**", timeout=15_000)
        seen["total_blocked_listed"] = int(page.text_content("#total") or -1)

        # A narrow screen (a phone): the header's links stay whole words, nothing is wider than the screen.
        narrow = browser.new_context(viewport={"width": 375, "height": 740}).new_page()
        narrow.context.add_cookies(page.context.cookies())
        for path in ("/dashboard", "/events"):
            narrow.goto(f"{base}{path}")
            seen[f"narrow{path.replace('/', '_')}"] = narrow.evaluate("""() => ({
                page_width: document.documentElement.scrollWidth,
                screen_width: window.innerWidth,
                nav_links: Array.from(document.querySelectorAll('.top nav a')).map(a => {
                    const box = a.getBoundingClientRect();
                    return {text: a.textContent, height: box.height,
                            line: parseFloat(getComputedStyle(a).lineHeight)};
                }),
            })""")
        narrow.close()

        # Not an administrator.
        response = page.goto(f"{base}/admin/users")
        seen["admin_status"] = response.status if response else None
        seen["admin_heading"] = page.text_content("h1")
        seen["csp"] = response.headers.get("content-security-policy") if response else None

        # Sign out: the session is gone.
        page.goto(f"{base}/dashboard")
        page.click("#logout")
        page.wait_for_url("**/login", timeout=15_000)
        page.goto(f"{base}/events")
        seen["after_sign_out_url"] = page.url

        seen["dialogs"] = dialogs
        seen["browser"] = browser.version
        browser.close()
    json.dump(seen, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
