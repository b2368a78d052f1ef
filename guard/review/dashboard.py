"""The dashboard's figures over a chosen range of Taiwan days: totals and shares per decision, a daily
chart of blocks, redactions and inspection failures with axes and values, figures per service, entity
type and user, each user's trend, and users whose last 24 hours stand out against their own previous
fortnight (the guideline's "unusual patterns"). Every figure links to the events behind it."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from guard.review import queries

DAYS = 30                  # the default range
MAX_DAYS = 366
BASELINE_DAYS = 14
TREND_DAYS = 7
UNUSUAL_FLOOR = 5          # never flag fewer than this many events in a day
UNUSUAL_SIGMAS = 3.0
DECISIONS = ("allow", "warn", "redact", "block", "error")
CHARTED = ("block", "redact", "error")


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
    error: int = 0

    @property
    def total(self) -> int:
        return self.block + self.redact + self.error


@dataclass(frozen=True)
class Share:
    decision: str
    count: int
    percent: float         # of every inspected prompt in the range


@dataclass(frozen=True)
class Trend:
    user: str
    total: int             # blocked and redacted in the whole range
    recent: int            # in the last TREND_DAYS days of the range
    before: int            # in the TREND_DAYS days before those

    @property
    def change(self) -> int:
        return self.recent - self.before


@dataclass(frozen=True)
class Unusual:
    user: str
    last_day: int
    mean: float
    stddev: float
    threshold: float


@dataclass(frozen=True)
class Dashboard:
    since: datetime        # first day's Taiwan midnight (UTC)
    until: datetime        # the Taiwan midnight after the last day (UTC), exclusive
    days: list[Day]
    shares: list[Share]
    total: int
    services: list[tuple[str, int, int]]   # service, blocked, redacted
    entities: list[Bar]
    users: list[Bar]
    trends: list[Trend]
    unusual: list[Unusual]

    @property
    def busiest_day(self) -> int:
        return max((d.total for d in self.days), default=0)

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


def default_range(now: datetime) -> tuple[datetime, datetime]:
    """The last DAYS Taiwan days, today included."""
    until = queries.local_midnight(now) + timedelta(days=1)
    return until - timedelta(days=DAYS), until


def build(engine: Engine, now: datetime, since: datetime | None = None,
          until: datetime | None = None) -> Dashboard:
    """The figures for Taiwan days from ``since`` (a local midnight) up to ``until`` (exclusive)."""
    default_since, default_until = default_range(now)
    since, until = since or default_since, until or default_until
    count = max(1, min(MAX_DAYS, round((until - since) / timedelta(days=1))))
    day_starts = [since + timedelta(days=count - 1 - i) for i in range(count)]   # newest first
    per_day = queries.events_by_period(engine, day_starts, until, "decision", CHARTED)
    days = [Day(start, *(per_day.get((decision, i), 0) for decision in CHARTED))
            for i, start in reversed(list(enumerate(day_starts)))]

    totals = queries.decision_totals(engine, since, until)
    total = sum(totals.values())
    shares = [Share(d, totals.get(d, 0), round(100 * totals.get(d, 0) / total, 1) if total else 0.0)
              for d in DECISIONS]

    per_service: dict[str, list[int]] = {}
    for service, decision, n in queries.flagged_by_service(engine, since, until):
        per_service.setdefault(service, [0, 0])[0 if decision == "block" else 1] += n
    services = sorted(((s, b, r) for s, (b, r) in per_service.items()), key=lambda x: (-(x[1] + x[2]), x[0]))

    users = queries.top_users(engine, since, until)
    trend_starts = [until - timedelta(days=TREND_DAYS * (i + 1)) for i in range(2)]
    per_trend = queries.events_by_period(engine, trend_starts, until, "user_name", queries.FLAGGED)
    trends = [Trend(user, n, per_trend.get((user, 0), 0), per_trend.get((user, 1), 0))
              for user, n in users]

    window_starts = [now - timedelta(days=i + 1) for i in range(BASELINE_DAYS + 1)]
    per_window = queries.events_by_period(engine, window_starts, now + timedelta(seconds=1), "user_name",
                                          queries.FLAGGED)
    windows: dict[str, list[int]] = {}
    for (user, period), n in per_window.items():
        if 0 <= period <= BASELINE_DAYS:
            windows.setdefault(user, [0] * (BASELINE_DAYS + 1))[period] += n

    return Dashboard(since=since, until=until, days=days, shares=shares, total=total, services=services,
                     entities=bars(queries.flagged_by_entity(engine, since, until)), users=bars(users),
                     trends=trends, unusual=unusual_users(windows))


# ---------------------------------------------------------------- the daily chart, in SVG user units

CHART_WIDTH, CHART_HEIGHT = 640, 200
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM = 44, 10, 170   # room for the value axis at the left, dates below


@dataclass(frozen=True)
class Segment:
    decision: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    """One day: its stacked segments (blocks at the bottom, then redactions, then failures)."""

    day: Day
    label: str             # MM-DD, Taiwan time
    date: str              # YYYY-MM-DD, for the drill-down link
    x: float
    width: float
    segments: list[Segment]
    show_label: bool


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Chart:
    columns: list[Column]
    ticks: list[Tick]
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = PLOT_LEFT
    bottom: int = PLOT_BOTTOM


def tick_step(value: int, most: int = 5) -> int:
    """The smallest 1, 2 or 5 × 10^k step that covers ``value`` in at most ``most`` steps."""
    power = 1
    while True:
        for step in (1, 2, 5):
            if step * power * most >= value:
                return step * power
        power *= 10


def chart(days: Sequence[Day]) -> Chart:
    busiest = max((d.total for d in days), default=0)
    step = tick_step(busiest)
    steps = max(1, math.ceil(busiest / step))
    top = step * steps
    plot_height = PLOT_BOTTOM - PLOT_TOP
    slot = (CHART_WIDTH - PLOT_LEFT) / max(1, len(days))
    every = max(1, math.ceil(len(days) / 10))      # at most about ten date labels
    columns = []
    for index, day in enumerate(days):
        base = float(PLOT_BOTTOM)
        segments = []
        for decision in CHARTED:
            count = getattr(day, decision)
            height = round(plot_height * count / top, 1)
            segments.append(Segment(decision, count, round(base - height, 1), height))
            base -= height
        local = day.start.astimezone(queries.LOCAL_TZ)
        labelled = index == len(days) - 1 or (index % every == 0 and len(days) - 1 - index >= every)
        columns.append(Column(day, local.strftime("%m-%d"), local.strftime("%Y-%m-%d"),
                              round(PLOT_LEFT + index * slot + slot * 0.1, 1), round(slot * 0.8, 1), segments,
                              labelled))
    ticks = [Tick(step * i, round(PLOT_BOTTOM - plot_height * i / steps, 1)) for i in range(steps + 1)]
    return Chart(columns, ticks)
