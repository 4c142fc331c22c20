"""Request and response bodies of imports, CSV profiles and the CSV preview."""

from __future__ import annotations

import codecs
import datetime as dt
import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from finance.models import ImportFormat, ImportStatus, LineOutcome
from finance.schemas import StrictModel

Column = Annotated[int, Field(ge=1, le=1000)] | Annotated[str, Field(min_length=1, max_length=200)]
"""A column: its header text (case-insensitive), or its number counted from 1."""

ProfileName = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class CsvMapping(StrictModel):
    """How to read one bank's CSV export. Columns are header texts or numbers from 1."""

    COLUMN_FIELDS: ClassVar[tuple[str, ...]] = (
        "date",
        "amount",
        "debit",
        "credit",
        "payee",
        "narration",
        "reference",
        "unique_id",
        "currency_column",
    )

    date: Column
    date_format: str = Field(
        default="%Y-%m-%d",
        max_length=40,
        description="A strptime format: %d.%m.%Y, %m/%d/%Y, %Y-%m-%d...",
    )
    amount: Column | None = Field(default=None, description="One signed amount column...")
    debit: Column | None = Field(default=None, description="...or money out and...")
    credit: Column | None = Field(default=None, description="...money in, in two columns")
    payee: Column | None = None
    narration: Column | None = None
    reference: Column | None = Field(
        default=None, description="A reference that is part of the fingerprint (cheque number)"
    )
    unique_id: Column | None = Field(
        default=None,
        description="A transaction id the bank keeps unique per account: the line's identity",
    )
    currency_column: Column | None = Field(default=None, description="The currency per line")
    currency: Annotated[str, StringConstraints(min_length=1, max_length=24)] | None = Field(
        default=None, description="The statement's currency when no column says"
    )
    decimal_separator: Literal[".", ","] = "."
    thousands_separator: Literal["", ",", ".", " ", "'"] = ""
    sign: Literal["inflow_positive", "outflow_positive"] = Field(
        default="inflow_positive",
        description="outflow_positive for statements (often credit cards) that show spending "
        "as positive amounts",
    )
    encoding: str | None = Field(default=None, max_length=40, description="Detected when null")
    delimiter: Annotated[str, StringConstraints(min_length=1, max_length=1)] | None = Field(
        default=None, description="Detected when null"
    )
    quotechar: Annotated[str, StringConstraints(min_length=1, max_length=1)] = '"'
    has_header: bool | None = Field(default=None, description="Detected when null")
    skip_rows: int = Field(default=0, ge=0, le=100, description="Lines before the header")

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str) -> str:
        if "%" not in value:
            raise ValueError("date_format is a strptime format such as %d.%m.%Y")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _amount_columns(self) -> CsvMapping:
        if self.amount is None and self.debit is None and self.credit is None:
            raise ValueError("map an amount column, or debit and credit columns")
        if self.amount is not None and (self.debit is not None or self.credit is not None):
            raise ValueError("map either an amount column or debit/credit columns, not both")
        if self.decimal_separator == self.thousands_separator:
            raise ValueError("the decimal and thousands separators must differ")
        return self


class CsvProfileIn(StrictModel):
    name: ProfileName
    mapping: CsvMapping


class CsvProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    mapping: CsvMapping
    created_at: dt.datetime
    updated_at: dt.datetime


class PreviewLine(BaseModel):
    position: str
    date: dt.date
    amount: str
    currency: str | None
    payee: str | None
    narration: str | None
    reference: str | None
    unique_id: str | None


class CsvPreview(BaseModel):
    """What was detected in the first lines, and how the mapping (if any) reads them."""

    encoding: str
    delimiter: str
    has_header: bool
    header: list[str]
    rows: list[list[str]]
    suggested_mapping: dict[str, str | int | None] = Field(
        description="Columns guessed from the header's names; check before saving a profile"
    )
    lines: list[PreviewLine] = Field(description="The first lines read with the mapping given")
    error: str | None = Field(description="Why the mapping given does not read the file")


class ImportLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int = Field(description="The line's number in this batch (in source order)")
    position: str = Field(description="Where in the file: a line, a record or an element")
    outcome: LineOutcome
    reason: str | None
    date: dt.date | None
    amount: str | None
    commodity: str | None
    payee: str | None
    narration: str | None
    reference: str | None
    counter_account_id: uuid.UUID | None
    transaction_id: uuid.UUID | None = Field(
        description="The transaction the line created, or (matched) the one it duplicates"
    )
    candidate_id: uuid.UUID | None = Field(
        description="For a flagged line: the hand-entered transaction it looks like"
    )


class ImportCounts(BaseModel):
    lines: int
    new: int
    duplicate: int
    flagged: int
    rejected: int
    skipped: int


class ImportBatchOut(BaseModel):
    id: uuid.UUID | None = Field(description="Null for a dry run, which stores nothing")
    dry_run: bool
    status: ImportStatus
    format: ImportFormat
    account_id: uuid.UUID | None
    filename: str | None
    file_sha256: str
    options: dict[str, object]
    counts: ImportCounts
    pending_review: int = Field(description="Flagged lines not yet accepted or rejected")
    created_by: uuid.UUID | None
    created_at: dt.datetime
    undone_at: dt.datetime | None
    lines: list[ImportLineOut] = Field(
        description="Line outcomes: every line of a small file; of a large one, every line "
        "that is not new first, up to the response limit (see lines_truncated)"
    )
    lines_truncated: bool = Field(
        description="More lines than shown; a stored batch lists them all at GET .../lines"
    )


class ImportBatchSummary(BaseModel):
    id: uuid.UUID
    status: ImportStatus
    format: ImportFormat
    account_id: uuid.UUID | None
    filename: str | None
    counts: ImportCounts
    created_by: uuid.UUID | None
    created_at: dt.datetime
    undone_at: dt.datetime | None


class ReviewIn(StrictModel):
    action: Literal["accept", "reject"] = Field(
        description="accept: add the line as a transaction of its own; reject: it is the "
        "hand-entered transaction already in the books (its identity is kept, so the line "
        "stays out of later imports too)"
    )
