"""CSV statements, read as a stream through a column mapping (a saved `csv-profile`).

The file is never held whole: rows are decoded and parsed one at a time, so a million-line
statement costs the memory of a chunk of lines. A line longer than `MAX_LINE_CHARS` is an
error, not a reason to buffer a gigabyte.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from finance.imports.detect import SAMPLE_BYTES, detect_encoding
from finance.imports.schemas import Column, CsvMapping
from finance.imports.statement import (
    MAX_LINE_CHARS,
    InvalidFile,
    Statement,
    StatementLine,
    clean_text,
    parse_amount,
)

_DELIMITERS = ",;\t|"


@dataclass(frozen=True)
class CsvLayout:
    """What the first lines say about the file: the basis of a preview."""

    encoding: str
    delimiter: str
    has_header: bool
    header: list[str]
    rows: list[list[str]]


def sniff(
    stream: BinaryIO,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    has_header: bool | None = None,
    skip_rows: int = 0,
    quotechar: str = '"',
    named_columns: bool = False,
    rows: int = 10,
) -> CsvLayout:
    """Detect encoding, delimiter and header from the first 64 KiB; return the first rows.

    With `named_columns` (a mapping that names its columns) the file must have a header.
    """
    sample = stream.read(SAMPLE_BYTES)
    found_encoding = detect_encoding(sample, encoding)
    text = sample.decode(found_encoding, errors="replace")
    lines = text.splitlines()[skip_rows:]
    if len(sample) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    body = "\n".join(lines)
    if not body.strip():
        raise InvalidFile("the file has no lines to read")
    found_delimiter = delimiter or _sniff_delimiter(body)
    if has_header is None:
        has_header = named_columns or _sniff_header(body, found_delimiter)
    parsed = [
        row
        for row in csv.reader(io.StringIO(body), delimiter=found_delimiter, quotechar=quotechar)
        if any(cell.strip() for cell in row)
    ]
    header = [cell.strip() for cell in parsed[0]] if has_header and parsed else []
    data = parsed[1:] if has_header else parsed
    return CsvLayout(
        encoding=found_encoding,
        delimiter=found_delimiter,
        has_header=has_header,
        header=header,
        rows=data[:rows],
    )


def parse_csv(stream: BinaryIO, mapping: CsvMapping) -> Statement:
    """The statement's lines, lazily; raises at the first line that does not fit the mapping."""
    layout = sniff(
        stream,
        encoding=mapping.encoding,
        delimiter=mapping.delimiter,
        has_header=mapping.has_header,
        skip_rows=mapping.skip_rows,
        quotechar=mapping.quotechar,
        named_columns=any(
            isinstance(getattr(mapping, name), str) for name in CsvMapping.COLUMN_FIELDS
        ),
        rows=0,
    )
    stream.seek(0)
    options = mapping.model_dump(mode="json") | {
        "encoding": layout.encoding,
        "delimiter": layout.delimiter,
        "has_header": layout.has_header,
    }
    return Statement(
        lines=_lines(stream, mapping, layout), currency=mapping.currency, options=options
    )


def _lines(stream: BinaryIO, mapping: CsvMapping, layout: CsvLayout) -> Iterator[StatementLine]:
    text = io.TextIOWrapper(stream, encoding=layout.encoding, newline="")
    counter = _LineCounter(text)
    try:
        for _ in range(mapping.skip_rows):
            next(counter, None)
        reader = csv.reader(counter, delimiter=layout.delimiter, quotechar=mapping.quotechar)
        columns: _Columns | None = None
        if layout.has_header:
            header = next(reader, None)
            if header is None:
                return
            columns = _Columns.resolve(mapping, [cell.strip() for cell in header])
        else:
            columns = _Columns.resolve(mapping, None)
        start = counter.count + 1
        for row in reader:
            position = f"line {start}"
            start = counter.count + 1
            if not any(cell.strip() for cell in row):
                continue
            yield columns.line(row, position)
    except UnicodeDecodeError as exc:
        raise InvalidFile(
            f"the text is not valid {layout.encoding}; set the profile's encoding",
            position=f"line {counter.count + 1}",
        ) from exc
    except csv.Error as exc:
        raise InvalidFile(f"not readable as CSV: {exc}", position=f"line {counter.count}") from exc
    finally:
        if not stream.closed:
            text.detach()  # leave the caller's file open


class _LineCounter:
    """Feeds the CSV reader line by line, counting lines and refusing overlong ones."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self.text = text
        self.count = 0

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        line = self.text.readline(MAX_LINE_CHARS + 1)
        if not line:
            raise StopIteration
        self.count += 1
        if len(line) > MAX_LINE_CHARS:
            raise InvalidFile(
                f"the line is longer than {MAX_LINE_CHARS} characters",
                position=f"line {self.count}",
            )
        return line


@dataclass(frozen=True)
class _Columns:
    """The mapping with every column resolved to an index."""

    mapping: CsvMapping
    date: int
    amount: int | None
    debit: int | None
    credit: int | None
    payee: int | None
    narration: int | None
    reference: int | None
    unique_id: int | None
    currency: int | None
    width: int

    @classmethod
    def resolve(cls, mapping: CsvMapping, header: list[str] | None) -> _Columns:
        def index(column: Column | None, name: str) -> int | None:
            if column is None:
                return None
            if isinstance(column, int):
                return column - 1
            if header is None:
                raise InvalidFile(
                    f"{name} names the column {column!r}, but the file has no header row"
                )
            wanted = column.strip().casefold()
            for position, cell in enumerate(header):
                if cell.lstrip("\ufeff").casefold() == wanted:
                    return position
            raise InvalidFile(
                f"{name}: no column {column!r} in the header ({', '.join(header)})",
                position="line 1" if mapping.skip_rows == 0 else f"line {mapping.skip_rows + 1}",
            )

        date = index(mapping.date, "date")
        assert date is not None
        resolved = {
            name: index(getattr(mapping, name), name)
            for name in (
                "amount",
                "debit",
                "credit",
                "payee",
                "narration",
                "reference",
                "unique_id",
                "currency_column",
            )
        }
        used = [date, *(value for value in resolved.values() if value is not None)]
        return cls(
            mapping=mapping,
            date=date,
            amount=resolved["amount"],
            debit=resolved["debit"],
            credit=resolved["credit"],
            payee=resolved["payee"],
            narration=resolved["narration"],
            reference=resolved["reference"],
            unique_id=resolved["unique_id"],
            currency=resolved["currency_column"],
            width=max(used) + 1,
        )

    def line(self, row: list[str], position: str) -> StatementLine:
        if len(row) < self.width:
            raise InvalidFile(
                f"the line has {len(row)} columns; the mapping reads column {self.width}",
                position=position,
            )
        mapping = self.mapping
        date_text = row[self.date].strip()
        try:
            if mapping.date_format == "%Y-%m-%d":
                date = dt.date.fromisoformat(date_text)
            else:
                date = dt.datetime.strptime(date_text, mapping.date_format).date()  # noqa: DTZ007
        except ValueError as exc:
            raise InvalidFile(
                f"date {date_text!r} does not match the format {mapping.date_format!r}",
                position=position,
            ) from exc
        if self.amount is not None:
            amount = self._amount(row[self.amount], position)
        else:
            credit = self._amount(row[self.credit], position) if self.credit is not None else None
            debit = self._amount(row[self.debit], position) if self.debit is not None else None
            amount = (credit or Decimal(0)) - abs(debit or Decimal(0))
        if mapping.sign == "outflow_positive":
            amount = -amount
        return StatementLine(
            position=position,
            date=date,
            amount=amount,
            payee=clean_text(self._cell(row, self.payee)),
            narration=clean_text(self._cell(row, self.narration), 2000),
            reference=clean_text(self._cell(row, self.reference), 255),
            unique_id=clean_text(self._cell(row, self.unique_id), 255),
            currency=clean_text(self._cell(row, self.currency), 24) or mapping.currency,
        )

    def _amount(self, text: str, position: str) -> Decimal:
        if not text.strip():
            return Decimal(0)
        return parse_amount(
            text,
            decimal_separator=self.mapping.decimal_separator,
            thousands_separator=self.mapping.thousands_separator or None,
            position=position,
        )

    @staticmethod
    def _cell(row: list[str], index: int | None) -> str | None:
        return row[index] if index is not None else None


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the sample into the most columns, the same number on (nearly)
    every line. csv.Sniffer alone mistakes a decimal comma for the delimiter of a file
    separated by semicolons."""
    sample = "\n".join(text.splitlines()[:50])
    best, best_score = ",", (False, 0)
    for delimiter in _DELIMITERS:
        widths = [len(row) for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row]
        if not widths:
            continue
        width, times = Counter(widths).most_common(1)[0]
        score = (width > 1 and times >= 0.9 * len(widths), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _sniff_header(text: str, delimiter: str) -> bool:
    """csv.Sniffer's guess, helped: a first row with no digit at all is a header."""
    first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    if first and not any(character.isdigit() for cell in first for character in cell):
        return True
    try:
        return csv.Sniffer().has_header(text[:20_000])
    except csv.Error:
        return False
