"""Reports over HTTP: CSV that matches the JSON, content negotiation, errors and access."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from finance.db import Database
from finance.models import LedgerMember, Role
from tests.conftest import AuthedUser, UserFactory, assert_problem
from tests.test_reports import Leg, flatten, household, report, small_books

RANGE = {"from": "2023-05-01", "to": "2024-02-29"}
REPORTS: dict[str, dict[str, str]] = {
    "balance-sheet": {"as_of": "2024-02-29"},
    "income-statement": {**RANGE, "interval": "quarter"},
    "net-worth": {**RANGE, "interval": "quarter"},
    "cash-flow": {**RANGE, "interval": "quarter"},
    "spending": {**RANGE, "group_by": "payee"},
    "trial-balance": {"as_of": "2024-02-29"},
}


def url(ledger: str, name: str) -> str:
    return f"/api/v1/ledgers/{ledger}/reports/{name}"


def read_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="')
    assert response.headers["content-disposition"].endswith('.csv"')
    return list(csv.DictReader(io.StringIO(response.text)))


def cells(
    amounts: dict[str, str], *others: dict[str, str]
) -> Iterable[tuple[str, tuple[str, ...]]]:
    """(commodity, the values of that commodity in each object, "0" where absent)."""
    codes = sorted({code for each in (amounts, *others) for code in each})
    for code in codes:
        yield code, tuple(each.get(code, "0") for each in (amounts, *others))


def expected_rows(name: str, body: dict[str, Any]) -> set[tuple[str, ...]]:
    """The rows the CSV must hold, written from the JSON answer."""
    rows: set[tuple[str, ...]] = set()
    if name == "balance-sheet":
        for section in ("assets", "liabilities", "equity"):
            for node in flatten(body[section]["accounts"]).values():
                for code, (own, total) in cells(node["balance"], node["total"]):
                    rows.add((section, node["account"], code, own, total))
            for code, amount in body[section]["total"].items():
                rows.add((section, "", code, "", amount))
    elif name == "income-statement":
        for section in ("income", "expenses"):
            for node in flatten(body[section]["accounts"]).values():
                for index, period in enumerate(body["periods"]):
                    pair = (node["balance"][index], node["total"][index])
                    for code, (own, total) in cells(*pair):
                        rows.add((section, node["account"], period["start"], code, own, total))
            for index, period in enumerate(body["periods"]):
                for code, amount in body[section]["total"][index].items():
                    rows.add((section, "", period["start"], code, "", amount))
        for index, period in enumerate(body["periods"]):
            for code, amount in body["net_income"][index].items():
                rows.add(("net_income", "", period["start"], code, "", amount))
    elif name == "net-worth":
        for point in body["points"]:
            for code, values in cells(point["assets"], point["liabilities"], point["net_worth"]):
                rows.add((point["date"], code, *values))
    elif name == "cash-flow":
        for index, period in enumerate(body["periods"]):
            for line in ("opening", "conversions", "net_change", "closing"):
                for code, amount in body[line][index].items():
                    rows.add((period["start"], line, code, "", "", amount))
            for flow in body["flows"]:
                triple = (flow["inflow"][index], flow["outflow"][index], flow["net"][index])
                for code, values in cells(*triple):
                    rows.add((period["start"], flow["kind"], code, *values))
    elif name == "spending":
        for group in body["groups"]:
            for code, amount in group["amount"].items():
                share = group["share"].get(code, "")
                rows.add(("group", group["key"] or "", code, amount, share))
        for code, amount in body["total"].items():
            rows.add(("total", "", code, amount, ""))
    else:
        for line in body["accounts"]:
            for measure in ("balance", "weight"):
                for code, amount in line[measure].items():
                    rows.add((line["account"], line["type"], measure, code, amount))
        for measure, field in (("balance", "total"), ("weight", "weight_total")):
            for code, amount in body[field].items():
                rows.add(("", "", measure, code, amount))
    return rows


def csv_rows(name: str, table: list[dict[str, str]]) -> set[tuple[str, ...]]:
    columns = {
        "balance-sheet": ("section", "account", "commodity", "balance", "total"),
        "income-statement": (
            "section",
            "account",
            "period_start",
            "commodity",
            "balance",
            "total",
        ),
        "net-worth": ("date", "commodity", "assets", "liabilities", "net_worth"),
        "cash-flow": ("period_start", "line", "commodity", "inflow", "outflow", "net"),
        "spending": ("row", "group", "commodity", "amount", "share"),
        "trial-balance": ("account", "type", "measure", "commodity", "amount"),
    }[name]
    return {tuple(row[column] for column in columns) for row in table}


async def test_csv_matches_the_json_for_every_report(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    ledger = await household().store(database, user)
    for name, params in REPORTS.items():
        for extra in ({}, {"currency": "USD"}):
            body = await report(client, user, ledger, name, **params, **extra)
            as_param = await client.get(
                url(ledger, name), params={**params, **extra, "format": "csv"}, headers=user.headers
            )
            table = read_csv(as_param)
            assert len(table) == len(expected_rows(name, body)), name  # no duplicate rows
            assert csv_rows(name, table) == expected_rows(name, body), name
            as_header = await client.get(
                url(ledger, name),
                params={**params, **extra},
                headers={**user.headers, "Accept": "text/csv"},
            )
            assert as_header.text == as_param.text
            assert as_header.headers["vary"] == "Accept"


async def test_content_negotiation(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    ledger = await small_books().store(database, user)
    target = url(ledger, "trial-balance")
    for accept, media in [
        ("text/csv", "text/csv; charset=utf-8"),
        ("text/csv;q=0.9, application/json;q=0.5", "text/csv; charset=utf-8"),
        ("application/json, text/csv;q=0.5", "application/json"),
        ("*/*", "application/json"),
        ("text/csv;q=0", "application/json"),
        ("", "application/json"),
    ]:
        response = await client.get(target, headers={**user.headers, "Accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"] == media, accept
    response = await client.get(
        target, params={"format": "json"}, headers={**user.headers, "Accept": "text/csv"}
    )
    assert response.headers["content-type"] == "application/json"
    response = await client.get(
        target, params={"as_of": "2024-03-31", "format": "csv"}, headers=user.headers
    )
    assert response.headers["content-disposition"] == (
        'attachment; filename="trial-balance-2024-03-31.csv"'
    )


async def test_csv_defuses_formulas_in_names(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    books = small_books()
    books.tx(
        dt.date(2024, 3, 6),
        '=HYPERLINK("http://example.com","x")',
        Leg("Expenses:Food", "5.00", "USD"),
        Leg("Assets:Checking", None, "USD"),
    )
    ledger = await books.store(database, user)
    params = {"from": "2024-01-01", "to": "2024-12-31", "group_by": "payee", "format": "csv"}
    table = read_csv(await client.get(url(ledger, "spending"), params=params, headers=user.headers))
    assert '\'=HYPERLINK("http://example.com","x")' in [row["group"] for row in table]
    spent = await report(client, user, ledger, "spending", **{**params, "format": "json"})
    assert spent["groups"][0]["key"] == '=HYPERLINK("http://example.com","x")'


async def test_every_report_answers_json_by_default(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> None:
    ledger = await household().store(database, user)
    for name in REPORTS:
        response = await client.get(url(ledger, name), headers=user.headers)
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == "application/json"
    statement = await report(client, user, ledger, "income-statement", to="2024-06-30")
    assert statement["from"] == "2024-01-01"  # the year of `to`
    assert len(statement["periods"]) == 6


async def test_readers_only(
    client: httpx.AsyncClient, database: Database, make_user: UserFactory
) -> None:
    owner = await make_user()
    viewer = await make_user()
    stranger = await make_user()
    ledger = await small_books().store(database, owner)
    async with database.sessions() as session:
        session.add(
            LedgerMember(
                ledger_id=uuid.UUID(ledger), user_id=uuid.UUID(viewer.id), role=Role.VIEWER
            )
        )
        await session.commit()
    for name in REPORTS:
        assert (await client.get(url(ledger, name), headers=viewer.headers)).status_code == 200
        assert_problem(await client.get(url(ledger, name), headers=stranger.headers), 404)
        assert_problem(await client.get(url(ledger, name)), 401)
        missing = url(str(uuid.uuid4()), name)
        assert_problem(await client.get(missing, headers=owner.headers), 404)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("income-statement", {"from": "2024-02-01", "to": "2024-01-01"}),
        ("income-statement", {"from": "1990-01-01", "to": "2024-12-31", "interval": "week"}),
        ("income-statement", {"interval": "fortnight"}),
        ("income-statement", {"depth": "0"}),
        ("net-worth", {"currency": "XAU"}),
        ("balance-sheet", {"as_of": "0001-01-01"}),
        ("balance-sheet", {"as_of": "9999-12-31"}),
        ("spending", {"group_by": "colour"}),
        ("cash-flow", {"format": "xml"}),
        ("trial-balance", {"as_of": "yesterday"}),
    ],
)
async def test_invalid_parameters(
    client: httpx.AsyncClient,
    database: Database,
    user: AuthedUser,
    name: str,
    params: dict[str, str],
) -> None:
    ledger = await small_books().store(database, user)
    assert_problem(await client.get(url(ledger, name), params=params, headers=user.headers), 422)


async def test_openapi_documents_json_and_csv(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for name in REPORTS:
        answer = spec["paths"][f"/api/v1/ledgers/{{ledger_id}}/reports/{name}"]["get"]
        content = answer["responses"]["200"]["content"]
        assert content["application/json"]["schema"]["$ref"].startswith("#/components/schemas/")
        assert "text/csv" in content
        assert {"401", "404", "422"} <= set(answer["responses"])
    balance = spec["components"]["schemas"]["BalanceSheetReport"]["properties"]
    assert {"assets", "liabilities", "equity", "holdings", "valuation"} <= set(balance)
