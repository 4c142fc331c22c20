"""Commodities: ISO 4217 currencies are created on first use with their standard minor units.

A commodity's precision fixes the scale of every amount stored in it (integers of minor
units), so it may only be raised, and raising it rescales the stored amounts exactly in the
same transaction. Writers read a commodity through `resolve_commodity`, which share-locks its
row on PostgreSQL: a precision raise (which takes the row's update lock) then waits for them,
and they wait for it, so no amount is ever written at a scale that has just changed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

import iso4217
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from finance import audit
from finance.commodities.schemas import CommodityRead
from finance.errors import Conflict, NotFound, Unprocessable
from finance.models import BalanceAssertion, Commodity, Posting
from finance.money import MAX_MINOR_UNITS

# Beancount's commodity syntax: starts with a capital, up to 24 characters.
CODE_PATTERN = re.compile(r"^[A-Z][A-Z0-9'._-]{0,22}[A-Z0-9]$|^[A-Z]$")


def iso_currency(code: str) -> tuple[int, str] | None:
    """(minor units, name) of an ISO 4217 currency with minor units, else None."""
    try:
        currency = iso4217.Currency(code)
    except (ValueError, KeyError):
        return None
    if currency.exponent is None:  # gold, SDRs, test codes: no minor units defined
        return None
    return currency.exponent, currency.currency_name


def check_code(code: str) -> str:
    if not CODE_PATTERN.match(code):
        raise Unprocessable(
            f"Commodity code {code!r} is not valid: use capitals, digits and ' . _ -, "
            "starting with a capital (like USD, ITOT, BTC)"
        )
    return code


def representation(commodity: Commodity) -> dict[str, object]:
    """The commodity as the API shows it, for the audit log."""
    return CommodityRead.model_validate(commodity).model_dump(mode="json")


async def find_commodity(
    session: AsyncSession, ledger_id: uuid.UUID, code: str, *, lock: bool = False
) -> Commodity | None:
    """`lock`: share-lock the row (PostgreSQL) while the caller writes amounts in it."""
    statement = select(Commodity).where(Commodity.ledger_id == ledger_id, Commodity.code == code)
    if lock:
        statement = statement.with_for_update(read=True).execution_options(populate_existing=True)
    return await session.scalar(statement)


async def resolve_commodity(
    session: AsyncSession, ledger_id: uuid.UUID, code: str, *, user_id: uuid.UUID | None = None
) -> Commodity:
    """The ledger's commodity with this code; an ISO currency is created on first use.

    Safe under concurrent first uses: the insert ignores a row another request just added.
    The row is share-locked (see the module docstring). `user_id` is who the creation of an
    ISO currency is recorded against in the audit log.
    """
    found = await find_commodity(session, ledger_id, code, lock=True)
    if found is not None:
        return found
    iso = iso_currency(code)
    if iso is None:
        raise Unprocessable(
            f"Unknown commodity {code!r}: create it first (POST commodities) with its precision"
        )
    precision, name = iso
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(Commodity)
        .values(ledger_id=ledger_id, id=uuid.uuid4(), code=code, name=name, precision=precision)
        .on_conflict_do_nothing(index_elements=["ledger_id", "code"])
    )
    created = await find_commodity(session, ledger_id, code, lock=True)
    assert created is not None
    if result.rowcount == 1:  # type: ignore[attr-defined]
        await audit.record(
            session,
            ledger_id=ledger_id,
            user_id=user_id,
            action="create",
            object_type="commodity",
            object_id=created.id,
            after=representation(created),
        )
    return created


async def list_commodities(session: AsyncSession, ledger_id: uuid.UUID) -> Sequence[Commodity]:
    result = await session.scalars(
        select(Commodity).where(Commodity.ledger_id == ledger_id).order_by(Commodity.code)
    )
    return result.all()


async def get_commodity(
    session: AsyncSession, ledger_id: uuid.UUID, commodity_id: uuid.UUID, *, lock: bool = False
) -> Commodity:
    """The ledger's commodity, or 404 (also for another ledger's). `lock`: for update."""
    statement = select(Commodity).where(
        Commodity.ledger_id == ledger_id, Commodity.id == commodity_id
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    commodity = await session.scalar(statement)
    if commodity is None:
        raise NotFound("No such commodity")
    return commodity


async def create_commodity(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None,
    code: str,
    name: str | None,
    precision: int | None,
) -> Commodity:
    """An ISO currency gets its standard minor units, or more if asked (never fewer: amounts
    in it must at least be writable to the cent); any other code needs its precision."""
    check_code(code)
    iso = iso_currency(code)
    if iso is not None:
        iso_precision, iso_name = iso
        if precision is not None and precision < iso_precision:
            raise Unprocessable(
                f"{code} is an ISO 4217 currency with {iso_precision} decimal places; "
                f"its precision cannot be lower than that (leave it out for the standard)"
            )
        precision = iso_precision if precision is None else precision
        name = name or iso_name
    elif precision is None:
        raise Unprocessable(
            f"{code} is not an ISO 4217 currency: give its precision (0 to 18 decimal places)"
        )
    if await find_commodity(session, ledger_id, code) is not None:
        raise Conflict(f"This ledger already has a commodity {code}")
    commodity = Commodity(ledger_id=ledger_id, code=code, name=name, precision=precision)
    session.add(commodity)
    await session.flush()
    await audit.record(
        session,
        ledger_id=ledger_id,
        user_id=user_id,
        action="create",
        object_type="commodity",
        object_id=commodity.id,
        after=representation(commodity),
    )
    return commodity


async def update_commodity(
    session: AsyncSession,
    ledger_id: uuid.UUID,
    commodity_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None,
    changes: dict[str, object],
) -> Commodity:
    """Apply the fields present in `changes` (`name`, `precision`); records one audit entry."""
    commodity = await get_commodity(session, ledger_id, commodity_id, lock="precision" in changes)
    before = representation(commodity)
    if "name" in changes:
        name = changes["name"]
        assert name is None or isinstance(name, str)
        commodity.name = name
    if "precision" in changes:
        precision = changes["precision"]
        if not isinstance(precision, int):
            raise Unprocessable("precision cannot be null")
        await _raise_precision(session, commodity, precision)
    await session.flush()
    after = representation(commodity)
    if after != before:
        await audit.record(
            session,
            ledger_id=ledger_id,
            user_id=user_id,
            action="update",
            object_type="commodity",
            object_id=commodity.id,
            before=before,
            after=after,
        )
    return commodity


async def _raise_precision(session: AsyncSession, commodity: Commodity, precision: int) -> None:
    """Multiply every stored amount of the commodity by 10^k, in SQL, all or nothing.

    The caller holds the commodity's row lock, so no writer adds an amount at the old scale
    meanwhile. Refused when a rescaled amount would not fit a signed 64-bit integer.
    """
    steps = precision - commodity.precision
    if steps < 0:
        raise Unprocessable(
            f"The precision of {commodity.code} can only be raised (it is "
            f"{commodity.precision}): a lower one would round stored amounts"
        )
    if steps == 0:
        return
    factor = 10**steps
    limit = MAX_MINOR_UNITS // factor
    ledger = commodity.ledger_id
    scaled: list[
        tuple[
            type[Posting] | type[BalanceAssertion], InstrumentedAttribute[int], ColumnElement[bool]
        ]
    ] = [
        (Posting, Posting.amount, Posting.commodity_id == commodity.id),
        (Posting, Posting.weight, Posting.weight_commodity_id == commodity.id),
        (BalanceAssertion, BalanceAssertion.amount, BalanceAssertion.commodity_id == commodity.id),
    ]
    for model, column, where in scaled:
        low, high = (
            await session.execute(
                select(func.min(column), func.max(column)).where(model.ledger_id == ledger, where)
            )
        ).one()
        if (high is not None and high > limit) or (low is not None and low < -limit):
            raise Unprocessable(
                f"{commodity.code} holds amounts too large to keep at {precision} decimal "
                f"places (the limit is {MAX_MINOR_UNITS} minor units)"
            )
    for model, column, where in scaled:
        await session.execute(
            update(model)
            .where(model.ledger_id == ledger, where)
            .values({column: column * factor})
            .execution_options(synchronize_session=False)
        )
    commodity.precision = precision
