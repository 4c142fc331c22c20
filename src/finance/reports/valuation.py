"""Valuation: amounts turned into one currency at the prices in force on a date, exactly.

A rate is the latest price on or before the date for a pair of commodities, taken as quoted
(one unit of `commodity` is worth `rate` units of `quote_commodity`) or inverted when only the
opposite pair was quoted; when both exist the more recent wins (the quoted direction on a tie).
Without a rate between the two, one intermediate commodity is tried (AAPL -> USD -> EUR),
preferring the ledger's base currency, then the route whose older price is the more recent,
then the intermediate's code. Longer chains are not followed: a value resting on three prices
is reported as missing rather than guessed.

Rates multiply as exact fractions (an inverted price has no finite decimal); only the converted
amount is rounded, to the currency's minor unit, half to even.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from finance.models import Price
from finance.reports.periods import ONE_DAY, bucket
from finance.reports.rows import fetch, raw

# The effective rate of a route is shown with this many significant digits, for reading only.
DISPLAY_DIGITS = 16


@dataclass(frozen=True)
class Quote:
    commodity: str
    quote: str
    date: dt.date
    rate: Decimal


@dataclass(frozen=True)
class Step:
    quote: Quote
    inverted: bool


@dataclass(frozen=True)
class Route:
    steps: tuple[Step, ...]
    rate: Fraction  # units of the target per unit of the source

    @property
    def oldest(self) -> dt.date:
        return min(step.quote.date for step in self.steps)

    def display_rate(self) -> str:
        with localcontext() as ctx:
            ctx.prec = DISPLAY_DIGITS
            value = Decimal(self.rate.numerator) / Decimal(self.rate.denominator)
        return f"{value.normalize():f}"


PriceBook = dict[tuple[str, str], Quote]


async def price_books(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    dates: Sequence[dt.date],
    codes: Mapping[Any, str],
) -> list[PriceBook]:
    """For each of the ascending `dates`, the latest quote of every pair on or before it.

    One query: prices are bucketed by the dates and only the last one of each pair in each
    bucket comes back; carrying them forward gives the book in force at each date. `codes`
    maps commodity ids as the driver returns them (`rows.raw`).
    """
    uppers = tuple(day + ONE_DAY for day in dates)
    inner = (
        select(
            raw(Price.commodity_id),
            raw(Price.quote_commodity_id),
            Price.date,
            Price.rate,
            bucket(Price.date, uppers).label("bucket"),
        )
        .where(Price.ledger_id == ledger_id, Price.date < uppers[-1])
        .subquery()
    )
    ranked = select(
        inner,
        func.row_number()
        .over(
            partition_by=(inner.c.commodity_id, inner.c.quote_commodity_id, inner.c.bucket),
            order_by=inner.c.date.desc(),
        )
        .label("rank"),
    ).subquery()
    rows = await fetch(
        session,
        select(
            ranked.c.commodity_id,
            ranked.c.quote_commodity_id,
            ranked.c.date,
            ranked.c.rate,
            ranked.c.bucket,
        ).where(ranked.c.rank == 1),
    )
    by_bucket: dict[int, list[Quote]] = defaultdict(list)
    for commodity_id, quote_id, date, rate, index in rows:
        by_bucket[int(index)].append(Quote(codes[commodity_id], codes[quote_id], date, rate))
    books: list[PriceBook] = []
    current: PriceBook = {}
    for index in range(len(dates)):
        for quote in by_bucket.get(index, ()):
            current[(quote.commodity, quote.quote)] = quote
        books.append(dict(current))
    return books


def _direct(book: PriceBook, source: str, target: str) -> Route | None:
    candidates: list[Route] = []
    forward = book.get((source, target))
    if forward is not None:
        candidates.append(Route((Step(forward, False),), Fraction(forward.rate)))
    backward = book.get((target, source))
    if backward is not None and backward.rate != 0:
        candidates.append(Route((Step(backward, True),), 1 / Fraction(backward.rate)))
    if not candidates:
        return None
    return max(candidates, key=lambda route: route.oldest)


def find_route(book: PriceBook, source: str, target: str, prefer: str | None) -> Route | None:
    """The rate from `source` to `target` in this book, directly or through one commodity."""
    direct = _direct(book, source, target)
    if direct is not None:
        return direct
    neighbours = {quote for base, quote in book if base == source}
    neighbours |= {base for base, quote in book if quote == source}
    routes: list[tuple[bool, dt.date, str, Route]] = []
    for middle in sorted(neighbours - {source, target}, reverse=True):
        first = _direct(book, source, middle)
        second = _direct(book, middle, target)
        if first is not None and second is not None:
            route = Route(first.steps + second.steps, first.rate * second.rate)
            routes.append((middle == prefer, route.oldest, middle, route))
    if not routes:
        return None
    # Preferred intermediate first, then the freshest; `reverse=True` above makes the
    # alphabetically first code win a tie, since max keeps the first of equals.
    return max(routes, key=lambda item: (item[0], item[1]))[3]


@dataclass(frozen=True)
class Used:
    date: dt.date
    commodity: str
    route: Route


@dataclass(frozen=True)
class Missing:
    date: dt.date
    commodity: str


class Converter:
    """Values amounts (minor units per commodity) in one currency at a column's date.

    Remembers every rate it used and every commodity it could not value, so a report lists
    them; an amount without a rate stays in its own commodity instead of being guessed.
    """

    def __init__(
        self,
        currency: str,
        precisions: Mapping[str, int],
        dates: Sequence[dt.date],
        books: Sequence[PriceBook],
        prefer: str | None,
    ) -> None:
        self.currency = currency
        self._precisions = precisions
        self._dates = dates
        self._books = books
        self._prefer = prefer
        self._routes: dict[tuple[int, str], Route | None] = {}
        self.used: dict[tuple[int, str], Used] = {}
        self.missing: dict[tuple[int, str], Missing] = {}

    def route(self, column: int, commodity: str) -> Route | None:
        key = (column, commodity)
        if key not in self._routes:
            self._routes[key] = find_route(
                self._books[column], commodity, self.currency, self._prefer
            )
        return self._routes[key]

    def value(self, column: int, amounts: Mapping[str, int]) -> dict[str, int]:
        valued: dict[str, int] = defaultdict(int)
        target_precision = self._precisions[self.currency]
        for code, minor in amounts.items():
            if minor == 0:
                continue
            if code == self.currency:
                valued[code] += minor
                continue
            route = self.route(column, code)
            date = self._dates[column]
            if route is None:
                self.missing[(column, code)] = Missing(date, code)
                valued[code] += minor
                continue
            self.used[(column, code)] = Used(date, code, route)
            scale = Fraction(10) ** (target_precision - self._precisions[code])
            valued[self.currency] += round(Fraction(minor) * route.rate * scale)
        return dict(valued)
