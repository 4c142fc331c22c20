"""Commodities: ISO 4217 currencies are created on first use with their standard minor units."""

from __future__ import annotations

import re
import uuid

import iso4217
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from finance.errors import Unprocessable
from finance.models import Commodity

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


async def find_commodity(
    session: AsyncSession, ledger_id: uuid.UUID, code: str
) -> Commodity | None:
    return await session.scalar(
        select(Commodity).where(Commodity.ledger_id == ledger_id, Commodity.code == code)
    )


async def resolve_commodity(session: AsyncSession, ledger_id: uuid.UUID, code: str) -> Commodity:
    """The ledger's commodity with this code; an ISO currency is created on first use.

    Safe under concurrent first uses: the insert ignores a row another request just added.
    """
    found = await find_commodity(session, ledger_id, code)
    if found is not None:
        return found
    iso = iso_currency(code)
    if iso is None:
        raise Unprocessable(
            f"Unknown commodity {code!r}: create it first (POST commodities) with its precision"
        )
    precision, name = iso
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(Commodity)
        .values(ledger_id=ledger_id, id=uuid.uuid4(), code=code, name=name, precision=precision)
        .on_conflict_do_nothing(index_elements=["ledger_id", "code"])
    )
    created = await find_commodity(session, ledger_id, code)
    assert created is not None
    return created
