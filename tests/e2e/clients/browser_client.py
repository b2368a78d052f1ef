"""Headless Chromium (Playwright) loads the local chat page through the proxy and sends each prompt.

The browser trusts only the proxy's CA key (``--ignore-certificate-errors-spki-list``), so the page
loads only if the proxy intercepted the connection. Prints one JSON object with a result per prompt.
"""

from __future__ import annotations

import argparse

from _common import emit
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--spki", required=True, help="base64 SHA-256 of the proxy CA's public key")
    parser.add_argument("--url", required=True, help="the chat page")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--prompt", action="append", required=True)
    args = parser.parse_args()
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium, proxy={"server": args.proxy}, ignore_default_args=False,
            args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={args.spki}"])
        page = browser.new_context(ignore_https_errors=False).new_page()
        page.goto(args.url, timeout=20_000)
        for prompt in args.prompt:
            page.fill("#prompt", prompt)
            page.click("#send")
            page.wait_for_selector("#out[data-done]", state="attached", timeout=20_000)
            out = page.locator("#out")
            results.append({"prompt": prompt, "text": out.text_content(),
                            "status": out.get_attribute("data-status"),
                            "error": out.get_attribute("data-error")})
        emit({"browser": browser.version, "results": results})
        browser.close()


if __name__ == "__main__":
    main()
