"""/api/v1/ledgers/{ledger_id}/reports: HTTP only; the rules live in the service.

Every report answers JSON, or CSV on `format=csv` or an `Accept` that prefers `text/csv`.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response

from finance.db import SessionDep
from finance.errors import responses
from finance.idempotency import IdempotentRoute
from finance.ledgers.deps import LedgerReader
from finance.reports import service, tables
from finance.reports.periods import Interval
from finance.reports.schemas import (
    BalanceSheetReport,
    CashFlow,
    GroupBy,
    IncomeStatement,
    NetWorth,
    Spending,
    TrialBalance,
)
from finance.reports.tables import Row

router = APIRouter(
    prefix="/ledgers/{ledger_id}/reports", tags=["reports"], route_class=IdempotentRoute
)

CSV_MEDIA_TYPE = "text/csv"
ERRORS = responses(401, 404, 422)
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report; as CSV with `format=csv` or `Accept: text/csv`",
        "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
}
REPORT_RESPONSES = {**CSV_RESPONSE, **ERRORS}

ReportT = TypeVar("ReportT")


class ReportFormat(enum.StrEnum):
    JSON = "json"
    CSV = "csv"


async def report_filters(
    account: Annotated[
        str | None,
        Query(max_length=1000, description="Account path prefix: that account and its subtree"),
    ] = None,
    tag: Annotated[
        str | None, Query(max_length=200, description="Transactions with this tag")
    ] = None,
    payee: Annotated[
        str | None, Query(max_length=500, description="Transactions with exactly this payee")
    ] = None,
) -> service.ReportFilters:
    return service.ReportFilters(account=account, tag=tag, payee=payee)


FiltersDep = Annotated[service.ReportFilters, Depends(report_filters)]
Currency = Annotated[
    str | None,
    Query(
        max_length=24,
        description="Value everything in this commodity at the prices in force; without it "
        "nothing is converted",
    ),
]
Depth = Annotated[
    int | None, Query(ge=1, le=50, description="Fold deeper accounts into their ancestor")
]
Format = Annotated[ReportFormat | None, Query(description="Overrides the Accept header")]
From = Annotated[
    dt.date | None, Query(alias="from", description="First day; default: 1 January of `to`'s year")
]
To = Annotated[dt.date | None, Query(description="Last day, included; default: today (UTC)")]
AsOf = Annotated[dt.date | None, Query(description="At the end of this day; default: today (UTC)")]
IntervalQuery = Annotated[Interval, Query(description="Calendar periods; weeks start on Monday")]


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _range(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    end = end or _today()
    return start or dt.date(end.year, 1, 1), end


def _quality(accept: str, media_type: str) -> float:
    """The q an Accept header gives to exactly `media_type` (0 when not named)."""
    best = 0.0
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if media.lower() != media_type:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        best = max(best, quality)
    return best


def wants_csv(request: Request, requested: ReportFormat | None) -> bool:
    if requested is not None:
        return requested is ReportFormat.CSV
    accept = request.headers.get("accept", "")
    csv_quality = _quality(accept, CSV_MEDIA_TYPE)
    return csv_quality > 0 and csv_quality >= _quality(accept, "application/json")


def _answer(
    request: Request,
    response: Response,
    requested: ReportFormat | None,
    report: ReportT,
    table: Callable[[ReportT], tuple[Row, Sequence[Row]]],
    filename: str,
) -> ReportT | Response:
    if not wants_csv(request, requested):
        response.headers["Vary"] = "Accept"
        return report
    header, rows = table(report)
    return Response(
        tables.render(header, rows),
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Vary": "Accept"},
    )


@router.get(
    "/balance-sheet",
    response_model=BalanceSheetReport,
    responses=REPORT_RESPONSES,
    summary="Assets, liabilities and equity at a date",
)
async def get_balance_sheet(
    access: LedgerReader,
    session: SessionDep,
    request: Request,
    response: Response,
    filters: FiltersDep,
    as_of: AsOf = None,
    currency: Currency = None,
    depth: Depth = None,
    format: Format = None,
) -> BalanceSheetReport | Response:
    day = as_of or _today()
    report = await service.balance_sheet(
        session, access, as_of=day, currency=currency, filters=filters, depth=depth
    )
    return _answer(
        request, response, format, report, tables.balance_sheet, f"balance-sheet-{day}.csv"
    )


@router.get(
    "/income-statement",
    response_model=IncomeStatement,
    responses=REPORT_RESPONSES,
    summary="Income and expenses per period, and the net income",
)
async def get_income_statement(
    access: LedgerReader,
    session: SessionDep,
    request: Request,
    response: Response,
    filters: FiltersDep,
    start: From = None,
    to: To = None,
    interval: IntervalQuery = Interval.MONTH,
    depth: Depth = None,
    currency: Currency = None,
    format: Format = None,
) -> IncomeStatement | Response:
    first, last = _range(start, to)
    report = await service.income_statement(
        session,
        access,
        start=first,
        end=last,
        interval=interval,
        depth=depth,
        currency=currency,
        filters=filters,
    )
    name = f"income-statement-{first}-{last}.csv"
    return _answer(request, response, format, report, tables.income_statement, name)


@router.get(
    "/net-worth",
    response_model=NetWorth,
    responses=REPORT_RESPONSES,
    summary="Assets minus liabilities at the end of each period",
)
async def get_net_worth(
    access: LedgerReader,
    session: SessionDep,
    request: Request,
    response: Response,
    filters: FiltersDep,
    start: From = None,
    to: To = None,
    interval: IntervalQuery = Interval.MONTH,
    currency: Currency = None,
    format: Format = None,
) -> NetWorth | Response:
    first, last = _range(start, to)
    report = await service.net_worth(
        session,
        access,
        start=first,
        end=last,
        interval=interval,
        currency=currency,
        filters=filters,
    )
    name = f"net-worth-{first}-{last}.csv"
    return _answer(request, response, format, report, tables.net_worth, name)


@router.get(
    "/cash-flow",
    response_model=CashFlow,
    responses=REPORT_RESPONSES,
    summary="Money into and out of the asset accounts, by kind of counter-account",
)
async def get_cash_flow(
    access: LedgerReader,
    session: SessionDep,
    request: Request,
    response: Response,
    filters: FiltersDep,
    start: From = None,
    to: To = None,
    interval: IntervalQuery = Interval.MONTH,
    currency: Currency = None,
    format: Format = None,
) -> CashFlow | Response:
    first, last = _range(start, to)
    report = await service.cash_flow(
        session,
        access,
        start=first,
        end=last,
        interval=interval,
        currency=currency,
        filters=filters,
    )
    name = f"cash-flow-{first}-{last}.csv"
    return _answer(request, response, format, report, tables.cash_flow, name)


@router.get(
    "/spending",
    response_model=Spending,
    responses=REPORT_RESPONSES,
    summary="Expenses by account, payee or tag, with each group's share",
)
async def get_spending(
    access: LedgerReader,
    session: SessionDep,
    request: Request,
    response: Response,
    filters: FiltersDep,
    start: From = None,
    to: To = None,
    group_by: GroupBy = GroupBy.ACCOUNT,
    depth: Depth = None,
    currency: Currency = None,
    format: Format = None,
) -> Spending | Response:
    first, last = _range(start, to)
    report = await service.spending(
        session,
        access,
        start=first,
        end=last,
        group_by=group_by,
        depth=depth,
        currency=currency,
        filters=filters,
    )
    name = f"spending-{first}-{last}.csv"
    return _answer(request, response, format, report, tables.spending, name)


@router.get(
    "/trial-balance",
    response_model=TrialBalance,
    responses=REPORT_RESPONSES,
    summary="Every account's balance; the weights sum to zero",
)
async def get_trial_balance(
    access: LedgerReader,
    session: SessionDep,
    request: Request,
    response: Response,
    filters: FiltersDep,
    as_of: AsOf = None,
    currency: Currency = None,
    format: Format = None,
) -> TrialBalance | Response:
    day = as_of or _today()
    report = await service.trial_balance(
        session, access, as_of=day, currency=currency, filters=filters
    )
    return _answer(
        request, response, format, report, tables.trial_balance, f"trial-balance-{day}.csv"
    )
