"""ISO 20022 camt.053 (bank-to-customer statement), any version from .001.02 on.

Parsed with defusedxml, which refuses a document type declaration outright: no entity is
ever expanded (billion laughs) and nothing external is fetched (XXE). Elements are matched
by local name, so every camt.053 namespace version reads the same way. Positions are element
paths such as `Stmt[1]/Ntry[3]`, since the XML parser keeps no line numbers.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from finance.imports.statement import (
    InvalidFile,
    Statement,
    StatementLine,
    clean_text,
    parse_amount,
)


def parse_camt053(data: bytes) -> Statement:
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidFile(
            "the XML declares a document type or entities, which statements never need "
            f"and this service refuses ({type(exc).__name__})"
        ) from exc
    except ET.ParseError as exc:
        raise InvalidFile(
            f"not well-formed XML: {exc}", position=f"line {exc.position[0]}"
        ) from exc
    report = _child(root, "BkToCstmrStmt")
    if _local(root.tag) != "Document" or report is None:
        raise InvalidFile("not a camt.053 document (no Document/BkToCstmrStmt)")
    statements = _children(report, "Stmt")
    if not statements:
        raise InvalidFile("the camt.053 document holds no Stmt")
    accounts = {_account_id(statement) for statement in statements}
    if len(accounts) > 1:
        raise InvalidFile(
            f"the document holds statements of {len(accounts)} accounts "
            f"({', '.join(sorted(a or '?' for a in accounts))}); import one account at a time"
        )
    first = statements[0]
    currency = _text(first, "Acct", "Ccy")
    return Statement(
        lines=_lines(statements, currency),
        currency=currency,
        account_number=_account_id(first),
    )


def _lines(statements: list[ET.Element], currency: str | None) -> Iterator[StatementLine]:
    for s_index, statement in enumerate(statements, start=1):
        for e_index, entry in enumerate(_children(statement, "Ntry"), start=1):
            yield _entry(entry, f"Stmt[{s_index}]/Ntry[{e_index}]", currency)


def _entry(entry: ET.Element, position: str, currency: str | None) -> StatementLine:
    status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
    amount_element = _child(entry, "Amt")
    if amount_element is None or not (amount_element.text or "").strip():
        raise InvalidFile("the entry has no Amt", position=position)
    amount = parse_amount(amount_element.text or "", position=position)
    indicator = _text(entry, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise InvalidFile(f"CdtDbtInd is {indicator!r}, not CRDT or DBIT", position=position)
    if indicator == "DBIT":
        amount = -amount
    date_text = (
        _text(entry, "BookgDt", "Dt")
        or _text(entry, "BookgDt", "DtTm")
        or _text(entry, "ValDt", "Dt")
        or _text(entry, "ValDt", "DtTm")
    )
    if date_text is None:
        raise InvalidFile("the entry has no BookgDt or ValDt", position=position)
    try:
        date = dt.date.fromisoformat(date_text[:10])
    except ValueError as exc:
        raise InvalidFile(f"date {date_text!r} is not an ISO date", position=position) from exc
    details = _first_path(entry, "NtryDtls", "TxDtls")
    party = "Cdtr" if indicator == "DBIT" else "Dbtr"
    payee = None
    narration = None
    reference = None
    unique_id = _text(entry, "AcctSvcrRef")
    if details is not None:
        payee = _text(details, "RltdPties", party, "Nm") or _text(
            details, "RltdPties", party, "Pty", "Nm"
        )
        unstructured = [
            (element.text or "").strip()
            for remittance in _children(details, "RmtInf")
            for element in _children(remittance, "Ustrd")
        ]
        narration = " ".join(part for part in unstructured if part) or None
        unique_id = unique_id or _text(details, "Refs", "AcctSvcrRef")
        end_to_end = _text(details, "Refs", "EndToEndId")
        if end_to_end and end_to_end.upper() != "NOTPROVIDED":
            reference = end_to_end
    narration = narration or _text(entry, "AddtlNtryInf")
    return StatementLine(
        position=position,
        date=date,
        amount=amount,
        payee=clean_text(payee),
        narration=clean_text(narration, 2000),
        unique_id=clean_text(unique_id, 255),
        reference=clean_text(reference, 255),
        currency=amount_element.get("Ccy") or currency,
        # Pending and informational entries are not (yet) on the books.
        skip=None if status is None or status.upper() == "BOOK" else f"entry status {status}",
    )


def _account_id(statement: ET.Element) -> str | None:
    return _text(statement, "Acct", "Id", "IBAN") or _text(statement, "Acct", "Id", "Othr", "Id")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _first_path(element: ET.Element, *names: str) -> ET.Element | None:
    current: ET.Element | None = element
    for name in names:
        if current is None:
            return None
        current = _child(current, name)
    return current


def _text(element: ET.Element, *names: str) -> str | None:
    found = _first_path(element, *names)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None
