"""The parsers alone: bytes in, exact lines out, or an error that says where."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest

from finance.imports.detect import decode, detect_encoding, detect_format
from finance.imports.identity import Identities, line_key
from finance.imports.parsers.delimited import parse_csv, sniff
from finance.imports.parsers.qif import parse_qif
from finance.imports.schemas import CsvMapping
from finance.imports.statement import InvalidFile, StatementLine, parse_amount
from finance.models import ImportFormat


@pytest.mark.parametrize(
    ("text", "decimal", "thousands", "expected"),
    [
        ("12.30", ".", None, "12.30"),
        ("-1,234.56", ".", ",", "-1234.56"),
        ("1.234,56", ",", ".", "1234.56"),
        ("1 234,56", ",", " ", "1234.56"),
        ("1'234.50", ".", "'", "1234.50"),
        ("(42.00)", ".", None, "-42.00"),
        ("42.00-", ".", None, "-42.00"),
        ("+5", ".", None, "5"),
        ("€ 3,50", ",", ".", "3.50"),
        ("$-7.25", ".", ",", "-7.25"),
        ("0.1", ".", None, "0.1"),
    ],
)
def test_amounts_are_exact_decimals(
    text: str, decimal: str, thousands: str | None, expected: str
) -> None:
    value = parse_amount(text, decimal_separator=decimal, thousands_separator=thousands)
    assert isinstance(value, Decimal)
    assert value == Decimal(expected)
    assert str(value) == expected


@pytest.mark.parametrize(
    ("text", "decimal"),
    [("1.234,56", "."), ("12.30", ","), ("abc", "."), ("1e5", "."), ("", "."), ("1..2", ".")],
)
def test_amounts_that_are_not_numbers_are_refused(text: str, decimal: str) -> None:
    with pytest.raises(InvalidFile, match="line 3"):
        parse_amount(text, decimal_separator=decimal, position="line 3")


def _qif(*lines: str, order: str = "mdy") -> list[StatementLine]:
    return list(parse_qif("\n".join(("!Type:Bank", *lines)), date_order=order).lines)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("written", "order", "expected"),
    [
        ("01/15/2024", "mdy", dt.date(2024, 1, 15)),
        ("1/15'24", "mdy", dt.date(2024, 1, 15)),
        ("1/ 5'24", "mdy", dt.date(2024, 1, 5)),
        ("01/15/99", "mdy", dt.date(1999, 1, 15)),
        ("01/15/04", "mdy", dt.date(2004, 1, 15)),
        ("15.01.2024", "dmy", dt.date(2024, 1, 15)),
        ("2024-01-15", "dmy", dt.date(2024, 1, 15)),
    ],
)
def test_qif_dates(written: str, order: str, expected: dt.date) -> None:
    (line,) = _qif(f"D{written}", "T-1.00", "^", order=order)
    assert line.date == expected


def test_qif_amounts_in_both_conventions() -> None:
    lines = _qif(
        "D1/1/24", "T-1,234.56", "^", "D1/1/24", "T-1.234,56", "^", "D1/1/24", "T12,50", "^"
    )
    assert [line.amount for line in lines] == [
        Decimal("-1234.56"),
        Decimal("-1234.56"),
        Decimal("12.50"),
    ]


def test_qif_errors_name_the_line() -> None:
    with pytest.raises(InvalidFile, match=r"line 2"):
        _qif("D13/45/2024", "T-1.00", "^")
    with pytest.raises(InvalidFile, match=r"no amount"):
        _qif("D1/1/24", "PShop", "^")
    with pytest.raises(InvalidFile, match=r"splits add up to"):
        _qif("D1/1/24", "T-10.00", "SA", "$-4.00", "SB", "$-5.00", "^")
    with pytest.raises(InvalidFile, match=r"no closing \^"):
        _qif("D1/1/24", "T-1.00")
    with pytest.raises(InvalidFile, match="investment"):
        list(parse_qif("!Type:Invst\nD1/1/24\n^\n").lines)
    with pytest.raises(InvalidFile, match="before any !Type"):
        list(parse_qif("D1/1/24\nT1\n^\n").lines)


def test_qif_lists_and_options_are_not_lines() -> None:
    text = "!Option:AutoSwitch\n!Type:Cat\nNFood\nE\n^\n!Type:Bank\nD1/2/24\nT-3.00\nLFood\n^\n"
    (line,) = parse_qif(text).lines
    assert (line.amount, line.category) == (Decimal("-3.00"), "Food")


def _csv(content: str, **mapping: object) -> list[StatementLine]:
    return list(parse_csv(io.BytesIO(content.encode()), CsvMapping.model_validate(mapping)).lines)


def test_csv_columns_by_number_without_a_header() -> None:
    lines = _csv(
        "2024-01-02;Shop;-1,50\n2024-01-03;Pay;2.000,00\n",
        date=1,
        payee=2,
        amount=3,
        decimal_separator=",",
        thousands_separator=".",
        has_header=False,
    )
    assert [(line.position, line.amount, line.payee) for line in lines] == [
        ("line 1", Decimal("-1.50"), "Shop"),
        ("line 2", Decimal("2000.00"), "Pay"),
    ]


def test_csv_quoted_fields_across_lines_and_blank_lines() -> None:
    content = 'Date,Payee,Amount\n2024-01-02,"Shop\nsecond line",-1.00\n\n2024-01-03,Pay,2.00\n'
    lines = _csv(content, date="Date", payee="Payee", amount="Amount")
    assert [(line.position, line.payee) for line in lines] == [
        ("line 2", "Shop second line"),
        ("line 5", "Pay"),
    ]


def test_csv_sign_convention_and_preamble_rows() -> None:
    content = "Card statement\nExported 2024-02-01\nDate,Merchant,Amount\n2024-01-02,Cafe,4.50\n"
    (line,) = _csv(
        content,
        date="Date",
        payee="Merchant",
        amount="Amount",
        skip_rows=2,
        sign="outflow_positive",
    )
    assert line.amount == Decimal("-4.50")
    assert line.position == "line 4"


def test_csv_mapping_errors_name_the_line() -> None:
    with pytest.raises(InvalidFile, match=r"line 1: date: no column 'When'"):
        _csv("Date,Amount\n2024-01-01,1\n", date="When", amount="Amount")
    with pytest.raises(InvalidFile, match=r"line 3: the line has 1 columns"):
        _csv("Date,Amount\n2024-01-01,1\n2024-01-02\n", date="Date", amount="Amount")


def test_csv_detection() -> None:
    layout = sniff(io.BytesIO("Datum;Betrag;Empfänger\n01.02.2024;-1,00;Bäcker\n".encode("cp1252")))
    assert layout.delimiter == ";"
    assert layout.has_header
    assert layout.header == ["Datum", "Betrag", "Empfänger"]
    assert layout.rows == [["01.02.2024", "-1,00", "Bäcker"]]
    layout = sniff(io.BytesIO(b"2024-01-01,Shop,-1.00\n2024-01-02,Pay,2.00\n"))
    assert layout.has_header is False


def test_encodings() -> None:
    assert detect_encoding(b"\xef\xbb\xbfDate") == "utf-8-sig"
    assert detect_encoding("Bäcker".encode()) == "utf-8"
    assert decode("Bäckerei Müller zahlt".encode("cp1252")) == "Bäckerei Müller zahlt"
    with pytest.raises(InvalidFile, match="binary"):
        detect_encoding(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(InvalidFile, match="line 2"):
        decode(b"ok\n\xff\xfe\xfa", "utf-8")


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"OFXHEADER:100\nDATA:OFXSGML", None, ImportFormat.OFX),
        (b'<?xml version="1.0"?>\n<?OFX OFXHEADER="200"?><OFX>', None, ImportFormat.OFX),
        (
            b'<?xml version="1.0"?>\n'
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">',
            None,
            ImportFormat.CAMT053,
        ),
        (b"!Type:Bank\nD1/1/24", None, ImportFormat.QIF),
        (b":20:REF\n:25:ACC\n:61:240101C1,00NMSCX", None, ImportFormat.MT940),
        (b'option "title" "x"\n2024-01-01 open Assets:Cash', None, ImportFormat.BEANCOUNT),
        (b"2024-01-01 open Assets:Cash\n", "books.txt", ImportFormat.BEANCOUNT),
        (b"Date,Amount\n2024-01-01,1", "bank.csv", ImportFormat.CSV),
        (b"Date,Amount\n2024-01-01,1", None, ImportFormat.CSV),
    ],
)
def test_formats_are_detected_from_the_content(
    head: bytes, name: str | None, expected: ImportFormat
) -> None:
    assert detect_format(head, name) == expected


def test_identities_count_repeated_lines() -> None:
    line = StatementLine(
        position="line 1", date=dt.date(2024, 1, 5), amount=Decimal("-3.50"), payee="Cafe"
    )
    same_spelled_otherwise = StatementLine(
        position="line 9", date=dt.date(2024, 1, 5), amount=Decimal("-3.5"), payee="  CAFE "
    )
    first, second = Identities("account"), Identities("account")
    ids = [first.next(line_key(line, "USD")), first.next(line_key(line, "USD"))]
    assert ids[0] != ids[1]
    assert [second.next(line_key(same_spelled_otherwise, "USD")) for _ in range(2)] == ids
    assert Identities("other").next(line_key(line, "USD")) != ids[0]
    with_id = StatementLine(
        position="line 1", date=dt.date(2024, 1, 5), amount=Decimal("-3.50"), unique_id="F1"
    )
    assert line_key(with_id, "USD") == "id:F1"
