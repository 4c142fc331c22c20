"""OFX 1.x (SGML), OFX 2.x (XML) and Quicken's QFX, read with ofxtools.

ofxtools converts every timestamp to UTC, which moves a line posted late in the evening west
of Greenwich to the next day; the posting date is therefore taken from the element's own
text (`YYYYMMDD...` as the bank wrote it), and everything else from ofxtools' typed model.
ofxtools lexes the markup itself (no XML parser), so entities are never expanded.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import warnings
from collections.abc import Iterator
from typing import Any

from ofxtools.models.base import OFXAggregateWarning
from ofxtools.Parser import OFXTree
from ofxtools.Types import OFXTypeWarning

from finance.imports.statement import InvalidFile, Statement, StatementLine, clean_text

# Banks routinely send NAMEs longer than the 32 characters OFX allows, and private tags;
# ofxtools warns and carries on, which is what an importer wants. It also logs every element
# it converts at INFO.
warnings.filterwarnings("ignore", category=OFXTypeWarning)
warnings.filterwarnings("ignore", category=OFXAggregateWarning)
logging.getLogger("ofxtools").setLevel(logging.WARNING)

_OFFSET = re.compile(r"position=\[(\d+):")
_AMOUNT = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)")
_MAX_DETAIL = 300


def parse_ofx(data: bytes) -> Statement:
    _check_cdata(data)
    tree = OFXTree()
    try:
        tree.parse(io.BytesIO(data))
    except Exception as exc:  # the library's errors are ValueError, SyntaxError and kin
        raise InvalidFile(f"not a readable OFX file: {_describe(exc, data)}") from exc
    root = tree.getroot()
    assert root is not None  # parse() succeeded
    offsets = [match.start() for match in re.finditer(rb"<STMTTRN>", data, re.IGNORECASE)]
    positions: list[str] = []
    raw_dates: list[str] = []
    for index, element in enumerate(root.iter("STMTTRN"), start=1):
        position = f"STMTTRN {index}"
        if index <= len(offsets):
            position += f" (line {_line_at(data, offsets[index - 1], body=False)})"
        positions.append(position)
        raw_dates.append(_check(element, position))
    try:
        ofx: Any = tree.convert()
    except Exception as exc:
        raise InvalidFile(f"not a readable OFX file: {_describe(exc, data)}") from exc
    statements = list(ofx.statements)
    if not statements:
        raise InvalidFile("the OFX file holds no bank or credit-card statement")
    if len(statements) > 1:
        numbers = ", ".join(str(_account_number(s)) for s in statements)
        raise InvalidFile(
            f"the OFX file holds {len(statements)} statements (accounts {numbers}); "
            "import one account's file at a time"
        )
    statement = statements[0]
    if type(statement).__name__ not in ("STMTRS", "CCSTMTRS"):
        raise InvalidFile("investment statements are not supported; import bank or card files")
    transactions = list(statement.transactions or [])
    if len(raw_dates) != len(transactions):  # pragma: no cover - one statement, one list
        raise InvalidFile("the OFX transaction list is inconsistent")
    currency = str(statement.curdef)

    def lines() -> Iterator[StatementLine]:
        for transaction, raw_date, position in zip(transactions, raw_dates, positions, strict=True):
            yield _line(transaction, raw_date, currency, position)

    return Statement(lines=lines(), currency=currency, account_number=_account_number(statement))


def _check_cdata(data: bytes) -> None:
    """Refuse a CDATA section left open on its line: ofxtools' lexer would then rescan the
    rest of the line from every later tag, a time quadratic in the line's length."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        last = line.rfind(b"<![CDATA[")
        if last >= 0 and line.find(b"]]>", last) < 0:
            raise InvalidFile("a CDATA section is not closed", position=f"line {number}")


def _check(element: Any, position: str) -> str:
    """Name the transaction whose amount or date is unreadable (ofxtools would only say
    that some decimal somewhere failed); answer the posting date as written."""
    amount = (element.findtext("TRNAMT") or "").strip()
    if not _AMOUNT.fullmatch(amount):
        raise InvalidFile(f"TRNAMT {amount!r} is not an amount", position=position)
    posted = (element.findtext("DTPOSTED") or "").strip()
    try:
        dt.date(int(posted[0:4]), int(posted[4:6]), int(posted[6:8]))
    except ValueError as exc:
        raise InvalidFile(f"DTPOSTED {posted!r} is not a date", position=position) from exc
    return posted


def _line(transaction: Any, raw_date: str, currency: str, position: str) -> StatementLine:
    date = dt.date(int(raw_date[0:4]), int(raw_date[4:6]), int(raw_date[6:8]))
    payee = transaction.name or (transaction.payee.name if transaction.payee else None)
    narration = transaction.memo
    if transaction.checknum:
        check = f"check {transaction.checknum}"
        narration = f"{narration} ({check})" if narration else check
    if transaction.currency is not None:
        currency = str(transaction.currency.cursym)
    return StatementLine(
        position=position,
        date=date,
        amount=transaction.trnamt,
        payee=clean_text(payee),
        narration=clean_text(narration, 2000),
        unique_id=transaction.fitid,
        reference=transaction.checknum or transaction.refnum,
        currency=currency,
    )


def _account_number(statement: Any) -> str | None:
    account = statement.account
    return str(account.acctid) if account is not None else None


def _describe(exc: Exception, data: bytes) -> str:
    """The library's message, short, with a character offset turned into a line number."""
    message = str(exc).split("\n", 1)[0] or type(exc).__name__
    if " in " in message and message.startswith("Tail text"):
        message = message.split(" in ", 1)[0]
    match = _OFFSET.search(str(exc))
    if match:
        offset = int(match.group(1))
        line = _line_at(data, offset, body=True)
        message = f"{message.split(' - position=')[0]} (near line {line})"
    return message[:_MAX_DETAIL]


def _line_at(data: bytes, offset: int, *, body: bool) -> int:
    """The line of an offset in the file, or in the body after the header (ofxtools' offsets;
    counted in bytes, so approximate where the text has multi-byte characters)."""
    start = max(0, data.find(b"<")) if body else 0
    return data.count(b"\n", 0, start + offset) + 1
