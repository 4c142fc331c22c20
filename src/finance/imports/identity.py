"""A statement line's identity, the key that makes re-importing a statement create nothing.

The bank's own unique id (FITID, `AcctSvcrRef`, an MT940 bank reference) is the identity
where the file has one; otherwise a fingerprint of what the line says: date, amount,
currency, payee and reference, normalized (case and spacing do not count). Both are scoped
to the statement's account, and numbered by occurrence within the file: the second of two
identical lines is `#2`, so both stay, and a later file holding the same two lines (an
overlapping statement) finds both already there. The identity is stored as a 128-bit
BLAKE2b digest, in a UUID column.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection

from sqlalchemy import Uuid, bindparam, column, func, select, text, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from finance.imports.statement import StatementLine
from finance.models import ImportLine
from finance.money import format_decimal


def _normalized(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


def line_key(line: StatementLine, currency: str) -> str:
    """What identifies a line, before scoping and numbering; readable, for messages."""
    if line.unique_id:
        return f"id:{line.unique_id.strip()}"
    return "fp:" + "\x1f".join(
        (
            line.date.isoformat(),
            format_decimal(line.amount),
            currency,
            _normalized(line.payee),
            _normalized(line.reference),
        )
    )


class Identities:
    """Numbers repeated keys within one file and turns each into its stored identity.

    Holds one small integer per distinct key of the file (about 100 bytes each): the price
    of counting occurrences in a file that is read as a stream.
    """

    def __init__(self, scope: str) -> None:
        self.scope = scope.encode()
        self.seen: dict[bytes, int] = {}

    def next(self, key: str) -> uuid.UUID:
        base = hashlib.blake2b(self.scope + b"\x1e" + key.encode(), digest_size=16).digest()
        occurrence = self.seen.get(base, 0) + 1
        self.seen[base] = occurrence
        if occurrence == 1:
            return uuid.UUID(bytes=base)
        numbered = hashlib.blake2b(base + f"#{occurrence}".encode(), digest_size=16).digest()
        return uuid.UUID(bytes=numbered)


async def serialize(session: AsyncSession, key: uuid.UUID) -> None:
    """Make imports that claim identities in the same scope run one after the other
    (PostgreSQL; SQLite writers queue anyway): the second sees the first's identities instead
    of failing on the unique index."""
    if session.get_bind().dialect.name == "postgresql":
        number = int.from_bytes(key.bytes[:8], "big", signed=True)
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})


async def find_claims(
    session: AsyncSession, ledger_id: uuid.UUID, identities: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
    """Which of `identities` a line of an earlier import claimed: its batch and position.

    On PostgreSQL each identity is one probe of the unique index, whatever the planner
    believes of the table (its statistics lag far behind a million-line import in progress,
    and an `IN` list of thousands then turns into a scan of the ledger's lines per chunk).
    """
    if not identities:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        wanted = (
            func.unnest(bindparam("identities", list(identities), type_=ARRAY(Uuid())))
            .table_valued(column("identity", Uuid()))
            .render_derived("wanted")
        )
        line = (
            select(ImportLine.batch_id, ImportLine.position)
            .where(ImportLine.ledger_id == ledger_id, ImportLine.identity == wanted.c.identity)
            .limit(1)
            .lateral("line")
        )
        query = select(wanted.c.identity, line.c.batch_id, line.c.position).join(line, true())
        rows = await session.execute(query)
    else:
        query = select(ImportLine.identity, ImportLine.batch_id, ImportLine.position).where(
            ImportLine.ledger_id == ledger_id,
            ImportLine.identity.in_(bindparam("identities", expanding=True, type_=Uuid())),
        )
        rows = await session.execute(query, {"identities": list(identities)})
    return {identity: (batch_id, position) for identity, batch_id, position in rows}
