"""Prices: what one unit of a commodity was worth in another on a date.

One price per commodity, quote commodity and date: a second one is refused with 409 naming the
first (delete it to correct it), so that a price, once reported on, does not change silently.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Date, Uuid, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from finance import audit
from finance.commodities.service import find_commodity, resolve_commodity
from finance.errors import Conflict, NotFound, Unprocessable
from finance.models import Commodity, Price
from finance.prices.schemas import PriceIn, PriceOut
from finance.schemas import Page, PageParams, cursor_date, cursor_key, cursor_uuid
from finance.transactions.service import Lookups

OBJECT_TYPE = "price"


def _out(price: Price, commodities: dict[uuid.UUID, Commodity]) -> PriceOut:
    return PriceOut(
        id=price.id,
        date=price.date,
        commodity=commodities[price.commodity_id].code,
        quote_commodity=commodities[price.quote_commodity_id].code,
        amount=f"{price.rate:f}",
        created_at=price.created_at,
    )


async def _outs(session: AsyncSession, ledger_id: uuid.UUID, prices: list[Price]) -> list[PriceOut]:
    lookups = Lookups(ledger_id)
    await lookups.load_commodity_ids(
        session, {c for price in prices for c in (price.commodity_id, price.quote_commodity_id)}
    )
    return [_out(price, lookups.commodities_by_id) for price in prices]


async def _resolve(
    session: AsyncSession, ledger_id: uuid.UUID, code: str, name: str, user_id: uuid.UUID | None
) -> Commodity:
    try:
        return await resolve_commodity(session, ledger_id, code, user_id=user_id)
    except Unprocessable as exc:
        raise Unprocessable(
            f"{name}: {exc.detail}",
            errors=[{"loc": ["body", name], "msg": exc.detail, "type": "unknown_commodity"}],
        ) from exc


async def create_price(
    session: AsyncSession, ledger_id: uuid.UUID, user_id: uuid.UUID | None, data: PriceIn
) -> PriceOut:
    if data.commodity == data.quote_commodity:
        raise Unprocessable("quote_commodity must differ from commodity")
    commodity = await _resolve(session, ledger_id, data.commodity, "commodity", user_id)
    quote = await _resolve(session, ledger_id, data.quote_commodity, "quote_commodity", user_id)
    existing = await session.scalar(
        select(Price.id).where(
            Price.ledger_id == ledger_id,
            Price.commodity_id == commodity.id,
            Price.quote_commodity_id == quote.id,
            Price.date == data.date,
        )
    )
    if existing is not None:
        raise Conflict(
            f"There is already a price of {commodity.code} in {quote.code} on "
            f"{data.date.isoformat()} ({existing}); delete it first to replace it",
            existing_id=str(existing),
        )
    price = Price(
        ledger_id=ledger_id,
        date=data.date,
        commodity_id=commodity.id,
        quote_commodity_id=quote.id,
        rate=data.amount,
    )
    session.add(price)
    await session.flush()
    created = _out(price, {commodity.id: commodity, quote.id: quote})
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="create",
        object_type=OBJECT_TYPE,
        object_id=price.id,
        after=created.model_dump(mode="json"),
    )
    return created


async def _get(session: AsyncSession, ledger_id: uuid.UUID, price_id: uuid.UUID) -> Price:
    price = await session.get(Price, (ledger_id, price_id))
    if price is None:
        raise NotFound("No such price")
    return price


async def get_price(session: AsyncSession, ledger_id: uuid.UUID, price_id: uuid.UUID) -> PriceOut:
    return (await _outs(session, ledger_id, [await _get(session, ledger_id, price_id)]))[0]


async def delete_price(
    session: AsyncSession, ledger_id: uuid.UUID, user_id: uuid.UUID | None, price_id: uuid.UUID
) -> None:
    price = await _get(session, ledger_id, price_id)
    (before,) = await _outs(session, ledger_id, [price])
    await session.delete(price)
    await session.flush()
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="delete",
        object_type=OBJECT_TYPE,
        object_id=price_id,
        before=before.model_dump(mode="json"),
    )


async def list_prices(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    page: PageParams,
    *,
    commodity: str | None = None,
    quote: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> Page[PriceOut]:
    """Newest first (date, then id, descending), a keyset page at a time."""
    query = select(Price).where(Price.ledger_id == ledger_id)
    for code, column in ((commodity, Price.commodity_id), (quote, Price.quote_commodity_id)):
        if code is None:
            continue
        found = await find_commodity(session, ledger_id, code)
        if found is None:
            return Page(items=[], next_cursor=None)
        query = query.where(column == found.id)
    if date_from is not None:
        query = query.where(Price.date >= date_from)
    if date_to is not None:
        query = query.where(Price.date <= date_to)
    if page.cursor is not None:
        day, identifier = cursor_key(page.cursor, cursor_date, cursor_uuid)
        query = query.where(
            tuple_(Price.date, Price.id) < tuple_(literal(day, Date()), literal(identifier, Uuid()))
        )
    query = query.order_by(Price.date.desc(), Price.id.desc()).limit(page.limit + 1)
    found_prices = list((await session.scalars(query)).all())
    last = found_prices[page.limit - 1] if len(found_prices) > page.limit else None
    return Page(
        items=await _outs(session, ledger_id, found_prices[: page.limit]),
        next_cursor=page.next_cursor([last.date.isoformat(), str(last.id)] if last else None),
    )
