"""Reading the console's query strings and forms into typed values, with Chinese messages for mistakes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from guard.review.queries import DISPOSITIONS, LOCAL_TZ, EventFilter, utc
from guard.review.render import DECISION_LABELS, UNIDENTIFIED

FILTER_FIELDS = ("from", "to", "user", "service", "decision", "entity", "disposition")
MAX_NOTE = 2000
MAX_REASON = 500
ENTITY_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


@dataclass(frozen=True)
class FilterForm:
    """The filter as typed (to fill the form again and build links) and as a query."""

    values: dict[str, str]
    query: EventFilter
    errors: list[str]


def _moment(text: str, end_of_day: bool) -> datetime:
    """A Taiwan date (whole day) or date and time, as UTC; ``end_of_day`` makes a date inclusive."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
        return datetime.combine(day, time(), LOCAL_TZ).astimezone(UTC)
    moment = datetime.fromisoformat(text)
    return utc(moment.replace(tzinfo=LOCAL_TZ) if moment.tzinfo is None else moment)


def parse_filter(args: Mapping[str, str]) -> FilterForm:
    values = {name: str(args.get(name, "")).strip()[:200] for name in FILTER_FIELDS}
    errors: list[str] = []
    bounds: dict[str, datetime | None] = {"from": None, "to": None}
    for name in ("from", "to"):
        if values[name]:
            try:
                bounds[name] = _moment(values[name], end_of_day=name == "to")
            except ValueError:
                errors.append(f"日期格式不正確：{values[name]}（請用 YYYY-MM-DD）")
                values[name] = ""
    if values["decision"] and values["decision"] not in DECISION_LABELS:
        errors.append("未知的決定類型")
        values["decision"] = ""
    if values["disposition"] and values["disposition"] not in (*DISPOSITIONS, "none"):
        errors.append("未知的處置狀態")
        values["disposition"] = ""
    if values["entity"] and not ENTITY_TYPE.fullmatch(values["entity"]):
        errors.append("未知的個資類型")
        values["entity"] = ""
    no_user = values["user"] == UNIDENTIFIED
    query = EventFilter(since=bounds["from"], until=bounds["to"], user="" if no_user else values["user"],
                        no_user=no_user,
                        service=values["service"], decision=values["decision"],
                        entity_type=values["entity"], disposition=values["disposition"])
    return FilterForm(values, query, errors)


@dataclass(frozen=True)
class RangeForm:
    """The dashboard's range of Taiwan days: as typed and as UTC bounds (``until`` exclusive)."""

    values: dict[str, str]
    since: datetime | None
    until: datetime | None
    errors: list[str]


def parse_range(args: Mapping[str, str], max_days: int) -> RangeForm:
    values = {name: str(args.get(name, "")).strip()[:10] for name in ("from", "to")}
    errors: list[str] = []
    bounds: dict[str, datetime | None] = {"from": None, "to": None}
    for name in ("from", "to"):
        if values[name]:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", values[name]):
                errors.append(f"日期格式不正確：{values[name]}（請用 YYYY-MM-DD）")
                values[name] = ""
                continue
            try:
                bounds[name] = _moment(values[name], end_of_day=name == "to")
            except ValueError:
                errors.append(f"日期不存在：{values[name]}")
                values[name] = ""
    since, until = bounds["from"], bounds["to"]
    if since and until and until <= since:
        errors.append("結束日期須在開始日期之後。")
        since = until = None
    if since and until and until - since > timedelta(days=max_days):
        errors.append(f"日期範圍最多 {max_days} 天。")
        since = until = None
    return RangeForm(values, since, until, errors)


def page_number(text: str | None) -> int:
    try:
        return max(1, min(int(text or "1"), 1_000_000))
    except ValueError:
        return 1
