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

from finance.imports.statement import StatementLine
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
