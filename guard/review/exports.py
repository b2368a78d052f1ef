"""What leaves the console as files: the event list as CSV, allow-list suggestions as policy YAML."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from guard.review.queries import EventRow, Suggestion
from guard.review.render import local_time

# Metadata and counts only: no snippet, stated reason or reviewer note (free text) goes into the CSV.
CSV_COLUMNS = ("event_id", "time", "kind", "decision", "user", "client", "service", "host", "method", "path",
               "policy_name", "policy_version", "tier", "action_taken", "request_bytes", "latency_ms",
               "entities", "disposition")

# A spreadsheet treats a cell starting with one of these as a formula (tab and CR as well, per OWASP).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_row(row: EventRow) -> list[str]:
    record = row.record
    entities = ";".join(f"{t}={n}" for t, n in sorted((record.get("entities") or {}).items()))
    values: dict[str, Any] = {column: record.get(column, "") for column in CSV_COLUMNS}
    values.update(time=local_time(record.get("time")), entities=entities, disposition=row.disposition)
    return [csv_cell(values[column]) for column in CSV_COLUMNS]


def csv_lines(rows: Iterable[EventRow]) -> Iterator[str]:
    """The CSV text in pieces, header first, with a BOM so spreadsheet programs read it as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + flush()
    for number, row in enumerate(rows, 1):
        writer.writerow(csv_row(row))
        if number % 200 == 0:
            yield flush()
    yield flush()


# ---------------------------------------------------------------- allow-list YAML

def yaml_string(value: str) -> str:
    """A YAML double-quoted scalar: readable Chinese, but every non-printable character escaped."""
    out = ['"']
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _comment(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def allowlist_yaml(items: Sequence[Suggestion], exported_at: datetime, exported_by: str) -> str:
    """The suggestions in a policy's ``allow_list`` shape, ready to paste into a policy file."""
    lines = [
        "# 允許清單建議：審查人員判定下列值為誤判（非個人資料）。",
        "# Allow-list suggestions: reviewers judged these values false positives (not personal data).",
        f"# {local_time(exported_at)} (UTC+8) {_comment(exported_by)}",
        "allow_list:",
    ]
    by_type: dict[str, list[Suggestion]] = {}
    for item in items:
        by_type.setdefault(item.entity_type, []).append(item)
    if not by_type:
        lines[-1] = "allow_list: {}"
    for entity_type in sorted(by_type):
        lines.append(f"  {entity_type}:")
        seen: set[str] = set()
        for item in by_type[entity_type]:
            if item.value in seen:
                continue
            seen.add(item.value)
            lines.append(f"    - {yaml_string(item.value)}  # {item.status} {_comment(item.event_id)} "
                         f"{_comment(item.proposed_by)}")
    return "\n".join(lines) + "\n"
