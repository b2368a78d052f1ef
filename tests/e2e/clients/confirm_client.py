"""Headless Chromium posts an HTML form through the proxy and answers the guard's 查詢事由 confirm page.

Steps: submit the prompt (a page navigation, no script); on the confirm page submit an empty reason
(the browser's own ``required`` check is lifted, so the guard's check is what answers); then submit
``--reason``. Prints one JSON object with what the page showed after each step.
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import emit
from browser_client import CHROMIUM_ARGS
from playwright.sync_api import Page, sync_playwright

CONFIRM_FORM = "form[action='/.guard/confirm']"


def snapshot(page: Page) -> dict[str, Any]:
    form = page.locator(CONFIRM_FORM)
    token = page.locator("input[name=token]")
    return {"url": page.url, "title": page.title(), "text": page.locator("body").inner_text(),
            "confirm_form": form.count(), "token": token.get_attribute("value") if token.count() else None}


def submit(page: Page, selector: str) -> None:
    with page.expect_navigation(timeout=20_000):
        page.click(selector)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--spki", required=True, help="base64 SHA-256 of the proxy CA's public key")
    parser.add_argument("--url", required=True, help="the page with the plain HTML form")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--reason", required=True)
    args = parser.parse_args()
    steps = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium, proxy={"server": args.proxy},
            args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={args.spki}"])
        page = browser.new_context().new_page()
        page.goto(args.url, timeout=20_000)
        page.fill("#prompt", args.prompt)
        submit(page, "#send")
        steps.append(snapshot(page))
        if steps[-1]["confirm_form"]:
            page.eval_on_selector("#reason", "e => { e.required = false; e.removeAttribute('minlength'); }")
            submit(page, f"{CONFIRM_FORM} button[type=submit]")
            steps.append(snapshot(page))
            page.fill("#reason", args.reason)
            submit(page, f"{CONFIRM_FORM} button[type=submit]")
            steps.append(snapshot(page))
        emit({"browser": browser.version, "steps": steps})
        browser.close()


if __name__ == "__main__":
    main()
