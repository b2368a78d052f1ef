"""The dashboard's figures: blocks and redactions per day, service, entity type and user, and users
whose last 24 hours stand out against their own previous fortnight (the guideline's "unusual patterns")."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from guard.review import queries

DAYS = 30
BASELINE_DAYS = 14
UNUSUAL_FLOOR = 5          # never flag fewer than this many events in a day
UNUSUAL_SIGMAS = 3.0


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    percent: float         # of the largest bar in its chart, for its width


@dataclass(frozen=True)
class Day:
    start: datetime        # UTC instant of the Taiwan midnight that starts the day
    block: int
    redact: int


@dataclass(frozen=True)
class Unusual:
    user: str
    last_day: int
    mean: float
    stddev: float
    threshold: float


@dataclass(frozen=True)
class Dashboard:
    days: list[Day]
    services: list[tuple[str, int, int]]   # service, blocked, redacted
    entities: list[Bar]
    users: list[Bar]
    unusual: list[Unusual]

    @property
    def busiest_day(self) -> int:
        return max((d.block + d.redact for d in self.days), default=0)

    @property
    def busiest_service(self) -> int:
        return max((b + r for _, b, r in self.services), default=0)


def bars(counts: Sequence[tuple[str, int]]) -> list[Bar]:
    top = max((n for _, n in counts), default=0) or 1
    return [Bar(name, n, round(100 * n / top, 1)) for name, n in counts]


def unusual_users(windows: Mapping[str, Sequence[int]], floor: int = UNUSUAL_FLOOR,
                  sigmas: float = UNUSUAL_SIGMAS) -> list[Unusual]:
    """Users whose last 24 h (``counts[0]``) reach max(floor, mean + sigmas·stddev) of the days before.

    The standard deviation is the population one over the baseline days, zero days included: a user
    quiet for a fortnight who suddenly has many blocks stands out (threshold = the floor).
    """
    out = []
    for user, counts in windows.items():
        last, baseline = counts[0], list(counts[1:]) or [0]
        mean, stddev = statistics.fmean(baseline), statistics.pstdev(baseline)
        threshold = max(float(floor), mean + sigmas * stddev)
        if last >= threshold:
            out.append(Unusual(user, last, round(mean, 2), round(stddev, 2), round(threshold, 2)))
    return sorted(out, key=lambda u: (-u.last_day, u.user))


def build(engine: Engine, now: datetime) -> Dashboard:
    since = queries.local_midnight(now) - timedelta(days=DAYS - 1)
    day_starts = [queries.local_midnight(now) - timedelta(days=i) for i in range(DAYS)]
    per_day = queries.flagged_by_period(engine, day_starts, now + timedelta(seconds=1), "decision")
    days = [Day(start, per_day.get(("block", i), 0), per_day.get(("redact", i), 0))
            for i, start in reversed(list(enumerate(day_starts)))]

    per_service: dict[str, list[int]] = {}
    for service, decision, n in queries.flagged_by_service(engine, since):
        per_service.setdefault(service, [0, 0])[0 if decision == "block" else 1] += n
    services = sorted(((s, b, r) for s, (b, r) in per_service.items()), key=lambda x: (-(x[1] + x[2]), x[0]))

    window_starts = [now - timedelta(days=i + 1) for i in range(BASELINE_DAYS + 1)]
    per_window = queries.flagged_by_period(engine, window_starts, now + timedelta(seconds=1), "user_name")
    windows: dict[str, list[int]] = {}
    for (user, period), n in per_window.items():
        if 0 <= period <= BASELINE_DAYS:
            windows.setdefault(user, [0] * (BASELINE_DAYS + 1))[period] += n

    return Dashboard(days=days, services=services,
                     entities=bars(queries.flagged_by_entity(engine, since)),
                     users=bars(queries.top_users(engine, since)),
                     unusual=unusual_users(windows))


CHART_WIDTH, CHART_HEIGHT = 600, 160


@dataclass(frozen=True)
class Column:
    """One day of the stacked bar chart, in SVG user units (blocks at the bottom, redactions above)."""

    day: Day
    label: str
    x: float
    width: float
    block_y: float
    block_height: float
    redact_y: float
    redact_height: float


def chart(days: Sequence[Day]) -> list[Column]:
    top = max((d.block + d.redact for d in days), default=0) or 1
    slot = CHART_WIDTH / max(1, len(days))
    columns = []
    for index, day in enumerate(days):
        block = round(CHART_HEIGHT * day.block / top, 1)
        redact = round(CHART_HEIGHT * day.redact / top, 1)
        label = day.start.astimezone(queries.LOCAL_TZ).strftime("%m-%d")
        columns.append(Column(day, label, round(index * slot + slot * 0.1, 1), round(slot * 0.8, 1),
                              CHART_HEIGHT - block, block, CHART_HEIGHT - block - redact, redact))
    return columns
