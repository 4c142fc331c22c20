"""Reports as flat CSV tables: one row per account (or line), period and commodity.

The rows are written from the same answer the JSON is, so the two cannot disagree. A long
("tidy") layout keeps every report one table a spreadsheet can filter or pivot; the JSON's
valuation details (rates, holdings) are not repeated in it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence

from finance.reports.schemas import (
    BalanceNode,
    BalanceSheetReport,
    CashFlow,
    IncomeStatement,
    NetWorth,
    PeriodNode,
    Spending,
    TrialBalance,
)

Row = Sequence[object]

# A cell a spreadsheet would read as a formula (CSV injection): names and payees are user text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _commodities(*amounts: Mapping[str, str]) -> list[str]:
    return sorted({code for each in amounts for code in each})


def _balance_rows(section: str, nodes: Iterable[BalanceNode]) -> Iterator[Row]:
    for node in nodes:
        for code in _commodities(node.balance, node.total):
            yield (
                section,
                text(node.account),
                node.depth,
                node.implied,
                code,
                node.balance.get(code, "0"),
                node.total.get(code, "0"),
            )
        yield from _balance_rows(section, node.children)


def balance_sheet(report: BalanceSheetReport) -> tuple[Row, list[Row]]:
    header = ("section", "account", "depth", "implied", "commodity", "balance", "total")
    rows: list[Row] = []
    for name, section in (
        ("assets", report.assets),
        ("liabilities", report.liabilities),
        ("equity", report.equity),
    ):
        rows.extend(_balance_rows(name, section.accounts))
        rows.extend(
            (name, "", 0, False, code, "", amount) for code, amount in section.total.items()
        )
    return header, rows


def _period_rows(
    section: str, nodes: Iterable[PeriodNode], periods: Sequence[tuple[str, str]]
) -> Iterator[Row]:
    for node in nodes:
        for index, (start, end) in enumerate(periods):
            balance, subtotal = node.balance[index], node.total[index]
            for code in _commodities(balance, subtotal):
                yield (
                    section,
                    text(node.account),
                    node.depth,
                    node.implied,
                    start,
                    end,
                    code,
                    balance.get(code, "0"),
                    subtotal.get(code, "0"),
                )
        yield from _period_rows(section, node.children, periods)


def income_statement(report: IncomeStatement) -> tuple[Row, list[Row]]:
    header = (
        "section",
        "account",
        "depth",
        "implied",
        "period_start",
        "period_end",
        "commodity",
        "balance",
        "total",
    )
    periods = [(period.start.isoformat(), period.end.isoformat()) for period in report.periods]
    rows: list[Row] = []
    for name, section in (("income", report.income), ("expenses", report.expenses)):
        rows.extend(_period_rows(name, section.accounts, periods))
        for (start, end), amounts in zip(periods, section.total, strict=True):
            rows.extend((name, "", 0, False, start, end, c, "", a) for c, a in amounts.items())
    for (start, end), amounts in zip(periods, report.net_income, strict=True):
        rows.extend(("net_income", "", 0, False, start, end, c, "", a) for c, a in amounts.items())
    return header, rows


def net_worth(report: NetWorth) -> tuple[Row, list[Row]]:
    header = ("date", "commodity", "assets", "liabilities", "net_worth")
    rows: list[Row] = [
        (
            point.date.isoformat(),
            code,
            point.assets.get(code, "0"),
            point.liabilities.get(code, "0"),
            point.net_worth.get(code, "0"),
        )
        for point in report.points
        for code in _commodities(point.assets, point.liabilities, point.net_worth)
    ]
    return header, rows


def cash_flow(report: CashFlow) -> tuple[Row, list[Row]]:
    header = ("period_start", "period_end", "line", "commodity", "inflow", "outflow", "net")
    rows: list[Row] = []
    for index, period in enumerate(report.periods):
        start, end = period.start.isoformat(), period.end.isoformat()
        rows.extend((start, end, "opening", c, "", "", a) for c, a in report.opening[index].items())
        for flow in report.flows:
            money_in, money_out, net = flow.inflow[index], flow.outflow[index], flow.net[index]
            rows.extend(
                (
                    start,
                    end,
                    flow.kind.value,
                    code,
                    money_in.get(code, "0"),
                    money_out.get(code, "0"),
                    net.get(code, "0"),
                )
                for code in _commodities(money_in, money_out, net)
            )
        for line, amounts in (
            ("conversions", report.conversions[index]),
            ("net_change", report.net_change[index]),
            ("closing", report.closing[index]),
        ):
            rows.extend((start, end, line, c, "", "", a) for c, a in amounts.items())
    return header, rows


def spending(report: Spending) -> tuple[Row, list[Row]]:
    header = ("row", "group", "commodity", "amount", "share")
    rows: list[Row] = [
        ("group", text(group.key or ""), code, amount, group.share.get(code, ""))
        for group in report.groups
        for code, amount in group.amount.items()
    ]
    rows.extend(("total", "", code, amount, "") for code, amount in report.total.items())
    return header, rows


def trial_balance(report: TrialBalance) -> tuple[Row, list[Row]]:
    header = ("account", "type", "measure", "commodity", "amount")
    rows: list[Row] = []
    for line in report.accounts:
        account, kind = text(line.account), line.type.value
        rows.extend((account, kind, "balance", c, a) for c, a in line.balance.items())
        rows.extend((account, kind, "weight", c, a) for c, a in line.weight.items())
    rows.extend(("", "", "balance", c, a) for c, a in report.total.items())
    rows.extend(("", "", "weight", c, a) for c, a in report.weight_total.items())
    return header, rows


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def render(header: Row, rows: Iterable[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue()
