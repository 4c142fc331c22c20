"""Files that must not get in: each answers a 4xx problem, names where and why, writes nothing."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from finance.app import create_app
from finance.db import Database
from finance.errors import PayloadTooLarge
from finance.imports import service
from finance.imports.outcomes import ImportRequest
from finance.models import Ledger
from tests.books import Books, counts, open_books
from tests.conftest import AuthedUser, Backend
from tests.test_imports import CHECKING, DATA, US_MAPPING, upload

pytestmark = [
    pytest.mark.filterwarnings("ignore::ofxtools.Types.OFXTypeWarning"),
    pytest.mark.filterwarnings("ignore::ofxtools.models.base.OFXAggregateWarning"),
]

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt>
<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><BookgDt><Dt>2024-01-02</Dt></BookgDt>
<AddtlNtryInf>&lol9;</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>
"""
SHORT_MAPPING = {key: value for key, value in US_MAPPING.items() if key != "reference"}
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt>
<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><BookgDt><Dt>2024-01-02</Dt></BookgDt>
<AddtlNtryInf>&secret;</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>
"""


async def refused(
    books: Books, database: Database, name: str, content: bytes, status: int = 422, **form: Any
) -> dict[str, Any]:
    """Upload, expect a problem, and check that nothing at all was written."""
    before = await counts(database)
    response = await upload(books, name, content=content, account_id=books.id(CHECKING), **form)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await counts(database) == before
    listed = await books.get("/imports")
    assert listed["items"] == []
    problem: dict[str, Any] = response.json()
    return problem


@pytest.fixture
async def books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    return await open_books(client, user, CHECKING)


async def test_a_csv_line_that_does_not_parse_is_named_and_nothing_is_written(
    books: Books, database: Database
) -> None:
    content = (DATA / "bank-us.csv").read_bytes().replace(b",3.50,,", b",3.5O,,", 1)
    problem = await refused(books, database, "bank-us.csv", content, mapping=US_MAPPING)
    assert problem["type"] == "urn:finance:problem:invalid-file"
    assert problem["position"] == "line 4"
    assert "'3.5O' is not a number" in problem["detail"]


async def test_a_bad_date_late_in_a_long_file_writes_nothing(
    books: Books, database: Database
) -> None:
    good = "".join(
        f"01/{day % 28 + 1:02d}/2024,Shop {n},,1.{n % 100:02d},,0\n"
        for n, day in enumerate(range(12_000))
    )
    content = (
        "Posting Date,Description,Check Number,Debit,Credit,Balance\n"
        + good
        + "13/45/2024,Broken,,1.00,,0\n"
    ).encode()
    problem = await refused(books, database, "long.csv", content, mapping=US_MAPPING)
    assert problem["position"] == "line 12002"
    assert "does not match the format" in problem["detail"]


async def test_a_malformed_ofx_file(books: Books, database: Database) -> None:
    content = (DATA / "checking-2024-01.ofx").read_bytes()
    truncated = content[: len(content) // 2]
    problem = await refused(books, database, "checking.ofx", truncated)
    assert "OFX" in problem["detail"]
    broken = content.replace(b"<TRNAMT>-42.17", b"<TRNAMT>forty-two")
    problem = await refused(books, database, "checking.ofx", broken)
    assert problem["position"].startswith("STMTTRN 2 (line ")
    assert "TRNAMT 'forty-two' is not an amount" in problem["detail"]
    # A CDATA section left open on a long line would cost ofxtools quadratic time.
    unclosed = content.replace(b"<NAME>SHELL OIL", b"<NAME><![CDATA[SHELL" + b" OIL" * 100_000)
    problem = await refused(books, database, "checking.ofx", unclosed)
    assert "CDATA" in problem["detail"]


async def test_xml_entity_expansion_is_refused(books: Books, database: Database) -> None:
    problem = await refused(books, database, "bomb.xml", BILLION_LAUGHS, format="camt053")
    assert "document type" in problem["detail"]


async def test_xml_external_entities_are_refused(books: Books, database: Database) -> None:
    problem = await refused(books, database, "xxe.xml", EXTERNAL_ENTITY, format="camt053")
    assert "document type" in problem["detail"]


async def test_an_ofx_file_with_entities_is_not_expanded(books: Books, database: Database) -> None:
    ofx = (DATA / "card-2024-02.qfx").read_bytes()
    bomb = ofx.replace(
        b"<OFX>", BILLION_LAUGHS.split(b"<Document")[0].split(b"?>", 1)[1] + b"<OFX>"
    )
    bomb = bomb.replace(b"PAYMENT - THANK YOU", b"&lol9;")
    response = await upload(books, "bomb.qfx", content=bomb, account_id=books.id(CHECKING))
    # ofxtools lexes tags itself and never expands an entity: refused or read as text.
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        assert all(len(line["payee"] or "") < 100 for line in response.json()["lines"])


async def test_not_well_formed_xml(books: Books, database: Database) -> None:
    content = (DATA / "statement-camt053.xml").read_bytes().replace(b"</Ntry>", b"</Ntri>", 1)
    problem = await refused(books, database, "camt.xml", content)
    assert problem["position"].startswith("line ")


async def test_a_huge_single_line(books: Books, database: Database) -> None:
    content = b"Posting Date,Description,Debit,Credit\n01/02/2024," + b"x" * 5_000_000 + b",1,\n"
    problem = await refused(books, database, "huge.csv", content, mapping=SHORT_MAPPING)
    assert problem["position"] == "line 2"
    assert "longer than" in problem["detail"]
    one_line = b"x" * 5_000_000
    problem = await refused(books, database, "huge.qif", one_line, format="qif")
    assert problem["status"] == 422
    # Beancount's parser slows down more than linearly on a very long line.
    ledger = b"2024-01-01 open Assets:Cash\n2024-01-01 open Assets:" + b"A" * 5_000_000 + b"\n"
    problem = await refused(books, database, "huge.beancount", ledger)
    assert problem["position"] == "line 2"
    # An amount of a million digits is refused, and the answer does not quote all of it.
    amount = b'<Amt Ccy="EUR">' + b"1" * 1_000_000 + b"</Amt>"
    camt = (
        (DATA / "statement-camt053.xml")
        .read_bytes()
        .replace(b'<Amt Ccy="EUR">850.00</Amt>', amount)
    )
    problem = await refused(books, database, "huge.xml", camt)
    assert problem["position"] == "Stmt[1]/Ntry[1]"
    assert len(problem["detail"]) < 400


async def test_binary_junk(books: Books, database: Database) -> None:
    junk = bytes(range(256)) * 64 + os.urandom(4096)
    for name in ("junk.csv", "junk.ofx", "junk.bin"):
        problem = await refused(books, database, name, junk, mapping=US_MAPPING)
        assert problem["status"] == 422
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
    await refused(books, database, "statement.png", png, mapping=US_MAPPING)


async def test_the_wrong_encoding(books: Books, database: Database) -> None:
    content = (DATA / "bank-de-2024-01.csv").read_bytes()
    mapping = {
        "date": "Buchungstag",
        "date_format": "%d.%m.%Y",
        "amount": "Betrag",
        "payee": "Verwendungszweck",
        "decimal_separator": ",",
        "thousands_separator": ".",
        "encoding": "utf-8",
    }
    problem = await refused(books, database, "bank.csv", content, mapping=mapping)
    assert "utf-8" in problem["detail"]
    problem = await refused(
        books, database, "bank.csv", content, mapping={**mapping, "encoding": "klingon"}
    )
    assert "klingon" in problem["detail"]


async def test_an_empty_file(books: Books, database: Database) -> None:
    for content in (b"", b"\n\n  \n"):
        problem = await refused(books, database, "empty.csv", content, mapping=US_MAPPING)
        assert "empty" in problem["detail"]


async def test_an_unknown_format_value(books: Books, database: Database) -> None:
    content = (DATA / "checking.qif").read_bytes()
    problem = await refused(books, database, "checking.qif", content, format="xls")
    assert problem["status"] == 422


async def test_a_statement_of_several_accounts(books: Books, database: Database) -> None:
    content = (DATA / "statement.sta").read_bytes()
    two = content + content.replace(b":25:37040044/0532013000", b":25:37040044/9999999999")
    problem = await refused(books, database, "two.sta", two)
    assert "2 accounts" in problem["detail"]


async def test_the_lines_limit(backend: Backend, database: Database, books: Books) -> None:
    """Counted while streaming; over it, the import stops with 413 and writes nothing."""
    before = await counts(database)
    async with database.sessions() as session:
        ledger = await session.get(Ledger, uuid.UUID(books.ledger_id))
        assert ledger is not None
        request = ImportRequest(account_id=uuid.UUID(books.id(CHECKING)))
        with pytest.raises(PayloadTooLarge):
            await service.run_import(
                session,
                ledger,
                uuid.UUID(books.owner.id),
                io.BytesIO((DATA / "checking-2024-01.ofx").read_bytes()),
                request,
                max_lines=5,
            )
        await session.rollback()
    assert await counts(database) == before


@pytest.fixture
async def small_upload_client(backend: Backend, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The same database behind an app whose upload limit is 64 KiB."""
    small = create_app(backend.settings(FINANCE_MAX_UPLOAD_BYTES=64 * 1024))
    async with small.router.lifespan_context(small):
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_an_upload_over_the_size_limit_gets_413(
    books: Books, database: Database, small_upload_client: httpx.AsyncClient
) -> None:
    before = await counts(database)
    content = b"Posting Date,Description,Debit,Credit\n" + b"01/02/2024,Shop,1.00,\n" * 5000
    response = await small_upload_client.post(
        f"{books.url}/imports",
        files={"file": ("big.csv", content, "text/csv")},
        data={"account_id": books.id(CHECKING)},
        headers=books.owner.headers,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert await counts(database) == before
