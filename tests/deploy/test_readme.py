"""The README keeps its promises: the operations sections exist, and every cross-reference lands."""

from __future__ import annotations

import re

import pytest

from tests.e2e.helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
HEADINGS = [line.lstrip("#").strip() for line in README.splitlines() if line.startswith("#")]


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("section", [
    "Operations", "Configuration", "Logs", "Start-up", "Deploying", "Graceful shutdown", "Upgrading",
    "Backup and restore of the audit store", "Key rotation: the CA and the audit key", "Reading the metrics",
    "Troubleshooting"])
def test_the_operations_sections_exist(section: str) -> None:
    assert section in HEADINGS


def test_every_link_to_a_section_lands_on_one() -> None:
    anchors = {anchor(h) for h in HEADINGS}
    links = re.findall(r"\]\(#([^)]+)\)", README)
    assert links
    assert [link for link in links if link not in anchors] == []


def test_every_operations_reference_names_a_section() -> None:
    for target in re.findall(r"Operations → ([A-Z][a-z]+(?: [a-z]+)?)", README):
        assert target in HEADINGS, target


def test_the_start_up_time_is_stated_with_how_it_was_measured() -> None:
    section = README.split("### Start-up", 1)[1].split("\n### ", 1)[0]
    assert "deploy/startup_time.py" in section and "/readyz` 200" in section
    assert re.search(r"\d+\.\d s", section)
