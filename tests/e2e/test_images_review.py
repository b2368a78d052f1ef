"""An image through the running proxy, then its event in the running console (SQLite and PostgreSQL).

The SDK sends a screenshot with an ID, a name and an address; the proxy masks it and records the
event with a masked thumbnail; a reviewer signs in to ``guard review`` with headless Chromium, opens
the event and sees the thumbnail. The test checks what the browser got: a small JPEG, served with
``no-store``, the values blacked out (compared with an unmasked thumbnail of the same image), and
nothing for a signed-out browser. The proxy's log and the event record hold no value.
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from guard.audit.keys import new_key, parse_keys
from guard.audit.store import AuditStore, thumbnail_digest
from guard.images import THUMBNAIL_SIDE, read_text, thumbnail
from tests.databases import BACKENDS, audit_database
from tests.e2e.helpers import REPO, GuardProxy, nonce, run_client, write_policy
from tests.e2e.test_images import PII_LINES, PII_VALUES, _send
from tests.e2e.upstream import UpstreamServer
from tests.ocr.render import cjk_font_path, darkest_run, png_bytes, render_lines
from tests.review.test_browser import review_console

pytestmark = [pytest.mark.browser, pytest.mark.e2e,
              pytest.mark.skipif(cjk_font_path() is None,
                                 reason="no CJK font (apt-get install fonts-noto-cjk)")]

CLIENT = Path(REPO) / "tests" / "review" / "clients" / "thumbnail_client.py"
REVIEWER, PASSWORD = "vera", "a reviewer's long password"


@pytest.fixture(scope="module", params=BACKENDS)
def seen(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, client_python: str,
         chromium: Path, openai_upstream: UpstreamServer) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("images-review")
    key_line = new_key()
    key_file = directory / "audit.key"
    key_file.write_text(key_line + "\n", encoding="ascii")
    screenshot = png_bytes(render_lines(PII_LINES, size=28))
    image = directory / "query-screen.png"
    image.write_bytes(screenshot)
    with audit_database(request.param, directory) as url:
        proxy = GuardProxy(confdir=directory, log_path=directory / "proxy.log", audit_db=url,
                           policy=write_policy(directory / "policy.yaml",
                                               {"e2e-openai": ("openai", openai_upstream)}),
                           options=(f"guard_audit_key_file={key_file}", "guard_timeout=60"))
        proxy.start()
        try:
            tag = nonce()
            result = _send(client_python, proxy, openai_upstream, "openai", image, f"{tag} 請整理成公文")
        finally:
            proxy.stop()
        assert "error" not in result, result
        added = subprocess.run(
            [sys.executable, "-m", "guard.cli", "users", "add", REVIEWER, "--role", "reviewer",
             "--password-stdin", "--audit-db", url, "--audit-key-file", str(key_file)],
            input=PASSWORD + "\n", capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
        assert added.returncode == 0, added.stderr
        store = AuditStore.open(url, parse_keys(key_line, "test"))
        try:
            (record,) = [e for e in store.events() if e.get("thumbnails")]
            with review_console(url, key_file, directory / "review.log") as console:
                output = run_client(client_python, str(CLIENT), "--url", console, "--chromium", str(chromium),
                                    "--name", REVIEWER, "--password", PASSWORD, "--event", record["event_id"],
                                    timeout=120)
        finally:
            store.close()
    yield output | {"record": record, "screenshot": screenshot, "proxy_log": proxy.log()}


def test_the_event_of_a_masked_image_lists_its_thumbnail(seen: dict[str, Any]) -> None:
    record = seen["record"]
    assert record["decision"] == "redact" and record["entities"].get("TW_NATIONAL_ID") == 1
    body = base64.b64decode(seen["body"])
    assert record["thumbnails"] == [thumbnail_digest(body)]  # the chain vouches for what was served


def test_the_reviewer_sees_a_small_jpeg_served_privately(seen: dict[str, Any]) -> None:
    assert seen["status"] == 200 and "圖片 1" in seen["section"]
    assert seen["headers"]["content-type"] == "image/jpeg"
    assert seen["headers"]["cache-control"] == "no-store"
    assert seen["headers"]["x-content-type-options"] == "nosniff"
    width, height = seen["natural"]
    assert 0 < max(width, height) <= THUMBNAIL_SIDE
    small = Image.open(io.BytesIO(base64.b64decode(seen["body"])))
    assert small.format == "JPEG" and list(small.size) == [width, height]


def test_the_thumbnail_has_the_values_blacked_out(seen: dict[str, Any]) -> None:
    served = Image.open(io.BytesIO(base64.b64decode(seen["body"]))).convert("L")
    unmasked = Image.open(io.BytesIO(thumbnail(seen["screenshot"], read_text(seen["screenshot"]), [])))
    assert served.size == unmasked.size
    # Each value's line carries a solid black bar the unmasked thumbnail of the same screenshot lacks.
    assert darkest_run(served) > 2 * darkest_run(unmasked.convert("L")) + 10


def test_a_signed_out_browser_gets_no_image(seen: dict[str, Any]) -> None:
    assert seen["signed_out_status"] in (302, 303) and not seen["signed_out_is_image"]


def test_no_value_reaches_the_proxy_log_or_the_record(seen: dict[str, Any]) -> None:
    record_text = repr(seen["record"])
    for value in PII_VALUES:
        assert value not in seen["proxy_log"] and value not in record_text
