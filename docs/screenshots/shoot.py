"""Headless Chromium saves the review console's main pages as PNG files (run by make.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--lang=zh-TW"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--url", "--chromium", "--name", "--password", "--event", "--out"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    out = Path(args.out)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1).new_page()
        page.goto(f"{args.url}/login")
        page.fill("#name", args.name)
        page.fill("#password", args.password)
        page.click("#sign-in")
        page.wait_for_url("**/events")
        page.screenshot(path=str(out / "events.png"))
        page.goto(f"{args.url}/dashboard")
        page.screenshot(path=str(out / "dashboard.png"), full_page=True)
        page.goto(f"{args.url}/events/{args.event}")
        page.screenshot(path=str(out / "event.png"), full_page=True)
        page.fill("#reason", "民眾陳情案調查")
        page.click("#reveal")
        page.wait_for_selector("#evidence")
        page.screenshot(path=str(out / "evidence.png"), full_page=True)
        narrow = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
        narrow.add_cookies(page.context.cookies())
        small = narrow.new_page()
        small.goto(f"{args.url}/dashboard")
        small.screenshot(path=str(out / "dashboard-narrow.png"))
        browser.close()


if __name__ == "__main__":
    main()
