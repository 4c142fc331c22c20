"""Report periods: calendar intervals clipped to the asked range, and their bucketing in SQL."""

from __future__ import annotations

import datetime as dt
import enum
import functools
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, literal_column
from sqlalchemy.orm import QueryableAttribute

from finance.errors import Unprocessable

# Weekly periods over twenty years; beyond that a report is not something a person reads.
MAX_PERIODS = 1100
ONE_DAY = dt.timedelta(days=1)
# Leaves room for the exclusive bound after the last day and the next calendar period.
LAST_DAY = dt.date(9998, 12, 31)


class Interval(enum.StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True)
class Period:
    start: dt.date  # both days included
    end: dt.date


def next_start(day: dt.date, interval: Interval) -> dt.date:
    """The first day of the calendar period after the one `day` falls in (weeks start Monday)."""
    if interval is Interval.WEEK:
        return day + dt.timedelta(days=7 - day.weekday())
    if interval is Interval.YEAR:
        return dt.date(day.year + 1, 1, 1)
    months = 1 if interval is Interval.MONTH else 3
    first_month = day.month - (day.month - 1) % months
    month_index = day.year * 12 + first_month - 1 + months
    return dt.date(month_index // 12, month_index % 12 + 1, 1)


def split(start: dt.date, end: dt.date, interval: Interval) -> list[Period]:
    """Calendar periods covering `start`..`end`; the first and last are clipped to the range."""
    if end < start:
        raise Unprocessable(f"from ({start.isoformat()}) is after to ({end.isoformat()})")
    if end > LAST_DAY:
        raise Unprocessable(f"Dates go up to {LAST_DAY.isoformat()}")
    periods: list[Period] = []
    begin = start
    while begin <= end:
        if len(periods) == MAX_PERIODS:
            raise Unprocessable(
                f"That is more than {MAX_PERIODS} {interval.value}s: "
                "use a longer interval or a shorter range"
            )
        following = next_start(begin, interval)
        periods.append(Period(begin, min(following - ONE_DAY, end)))
        begin = following
    return periods


@functools.lru_cache(maxsize=64)
def bucket(column: QueryableAttribute[dt.date], uppers: tuple[dt.date, ...]) -> ColumnElement[int]:
    """The index of the first of `uppers` (ascending, exclusive bounds) the date is below.

    A balanced tree of CASEs: each row costs log2(n) comparisons, the same SQL on SQLite and
    PostgreSQL, and the date column stays index-friendly. Rows at or past the last bound must be
    excluded by the caller's WHERE. The bounds are written in as ISO date literals, which both
    databases compare with a date: as n bound parameters, the tree would cost SQLAlchemy
    milliseconds on every request to look its statement up in the compiled cache (it walks
    every parameter); as text it is one string. Built once per column and bounds.
    """
    name = str(column.expression)

    def build(low: int, high: int) -> str:
        if low == high:
            return str(low)
        middle = (low + high) // 2
        return (
            f"CASE WHEN {name} < '{uppers[middle].isoformat()}' "
            f"THEN {build(low, middle)} ELSE {build(middle + 1, high)} END"
        )

    return literal_column(build(0, len(uppers) - 1), Integer)
