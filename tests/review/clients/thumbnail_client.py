"""Headless Chromium (Playwright) opens an image event in the review console and reports its thumbnail.

Signs in, opens the event page, waits for the masked thumbnail to load and reads its size as the
browser decoded it, fetches the image URL with the session (status, headers, bytes), signs out and
fetches it again. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the console, e.g. http://127.0.0.1:8081")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--name", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--event", required=True, help="an event whose request carried an image")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    out: dict[str, object] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.goto(f"{base}/events/{args.event}", timeout=20_000)
        page.fill("#name", args.name)
        page.fill("#password", args.password)
        page.click("#sign-in")
        page.wait_for_url(f"**/events/{args.event}", timeout=20_000)
        image = page.locator("#thumbnails img").first
        image.wait_for(timeout=20_000)
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                               timeout=20_000)
        out["section"] = page.inner_text("#thumbnails")
        out["natural"] = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        src = image.get_attribute("src") or ""
        out["src"] = src
        response = page.request.get(f"{base}{src}")
        out["status"] = response.status
        out["headers"] = response.headers
        out["body"] = base64.b64encode(response.body()).decode()
        page.click("#logout")
        page.wait_for_url("**/login", timeout=15_000)
        after = page.request.get(f"{base}{src}", max_redirects=0)
        out["signed_out_status"] = after.status
        out["signed_out_is_image"] = after.headers.get("content-type", "").startswith("image/")
        browser.close()
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
