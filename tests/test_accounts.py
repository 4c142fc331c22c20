"""Accounts: path names and types, filters, renames that carry descendants, deletion rules."""

from __future__ import annotations

import datetime
import uuid

import httpx
import pytest
from sqlalchemy import select

from finance.accounts.service import check_account_accepts
from finance.db import Database
from finance.errors import Unprocessable
from finance.models import Account, AccountType
from tests.conftest import AuthedUser, UserFactory
from tests.test_ledgers import add_member, create_ledger, insert_transaction


async def setup(client: httpx.AsyncClient, owner: AuthedUser) -> tuple[str, str]:
    ledger = await create_ledger(client, owner)
    return str(ledger["id"]), f"/api/v1/ledgers/{ledger['id']}/accounts"


async def create(
    client: httpx.AsyncClient, path: str, user: AuthedUser, **body: object
) -> dict[str, object]:
    response = await client.post(path, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def names(client: httpx.AsyncClient, path: str, user: AuthedUser, **params: str) -> list[str]:
    response = await client.get(path, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()]


async def test_create_infers_the_type_from_the_root(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    _, path = await setup(client, user)
    expected = {
        "Assets:Bank:Checking": "asset",
        "Liabilities:Card": "liability",
        "Equity:Opening-Balances": "equity",
        "Income:Salary": "income",
        "Expenses:Food & Drink:Café": "expense",
    }
    for name, type_ in expected.items():
        created = await create(client, path, user, name=name)
        assert created["type"] == type_
    created = await create(
        client,
        path,
        user,
        name="Assets:Broker",
        type="asset",
        allowed_commodities=["USD", "EUR", "USD"],
        opened_on="2024-01-01",
        closed_on="2024-12-31",
        note="Brokerage",
    )
    assert created["allowed_commodities"] == ["USD", "EUR"]
    assert created["opened_on"] == "2024-01-01"
    assert created["closed_on"] == "2024-12-31"
    assert created["note"] == "Brokerage"
    response = await client.get(f"{path}/{created['id']}", headers=user.headers)
    assert response.json() == created


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "Cash"}, "must start with"),
        ({"name": "assets:Cash"}, "must start with"),
        ({"name": "Assets"}, "alone is not an account"),
        ({"name": "Assets::Cash"}, "empty level"),
        ({"name": "Assets:Cash:"}, "empty level"),
        ({"name": "Assets: Cash"}, "spaces around"),
        ({"name": "Assets:Cash\n"}, "unprintable"),
        ({"name": "Assets:Cash", "type": "expense"}, "not expense"),
        ({"name": "Assets:Cash", "type": "cash"}, "type"),
        ({"name": "Assets:Cash", "opened_on": "2024-02-01", "closed_on": "2024-01-31"}, "before"),
        ({"name": "Assets:Cash", "allowed_commodities": []}, "allowed_commodities"),
        ({"name": "Assets:Cash", "allowed_commodities": ["NOPE"]}, "Unknown commodity"),
        ({"name": "Assets:Cash", "allowed_commodities": ["usd"]}, "not valid"),
        ({"name": "Assets:Cash", "opened_on": "2024-02-30"}, "opened_on"),
        ({"name": "Assets:Cash", "id": str(uuid.uuid4())}, "id"),
        ({"name": "Assets:Cash", "ledger_id": str(uuid.uuid4())}, "ledger_id"),
        ({"name": "Assets:Cash", "created_by": str(uuid.uuid4())}, "created_by"),
        ({"name": "Assets:" + "x" * 1000}, "name"),
    ],
)
async def test_invalid_accounts_are_refused(
    client: httpx.AsyncClient, user: AuthedUser, body: dict[str, object], fragment: str
) -> None:
    _, path = await setup(client, user)
    response = await client.post(path, json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    assert fragment in response.text
    assert await names(client, path, user) == []


async def test_names_are_unique_per_ledger_and_case_sensitive(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner = await make_user()
    _, path = await setup(client, owner)
    await create(client, path, owner, name="Assets:Cash")
    response = await client.post(path, json={"name": "Assets:Cash"}, headers=owner.headers)
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    await create(client, path, owner, name="Assets:cash")
    _, other = await setup(client, owner)
    await create(client, other, owner, name="Assets:Cash")


async def test_filters_by_type_and_path_prefix(client: httpx.AsyncClient, user: AuthedUser) -> None:
    _, path = await setup(client, user)
    for name in (
        "Assets:Bank:Checking",
        "Assets:Bank",
        "Assets:Banking",
        "Assets:Bank:Savings",
        "Assets:bank:Other",
        "Assets:100%_Sure",
        "Assets:100%_Sure:Sub",
        "Assets:100xx:Sub",
        "Expenses:Food",
    ):
        await create(client, path, user, name=name)
    assert await names(client, path, user, type="expense") == ["Expenses:Food"]
    assert await names(client, path, user, prefix="Assets:Bank") == [
        "Assets:Bank",
        "Assets:Bank:Checking",
        "Assets:Bank:Savings",
    ]
    assert await names(client, path, user, prefix="Assets:100%_Sure") == [
        "Assets:100%_Sure",
        "Assets:100%_Sure:Sub",
    ]
    assert await names(client, path, user, prefix="Assets:Bank:", type="asset") == [
        "Assets:Bank",
        "Assets:Bank:Checking",
        "Assets:Bank:Savings",
    ]
    assert await names(client, path, user, prefix="Expenses", type="asset") == []
    assert len(await names(client, path, user, prefix="Assets")) == 8
    response = await client.get(path, params={"type": "cash"}, headers=user.headers)
    assert response.status_code == 422


async def test_rename_carries_the_descendants(client: httpx.AsyncClient, user: AuthedUser) -> None:
    _, path = await setup(client, user)
    bank = await create(client, path, user, name="Assets:Bank")
    for name in (
        "Assets:Bank:Checking",
        "Assets:Bank:Checking:Joint",
        "Assets:Banking",
        "Assets:bank:x",
    ):
        await create(client, path, user, name=name)
    response = await client.patch(
        f"{path}/{bank['id']}", json={"name": "Assets:Bank:Bank"}, headers=user.headers
    )
    assert response.status_code == 422
    response = await client.patch(
        f"{path}/{bank['id']}", json={"name": "Assets:Banks:Chase"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Assets:Banks:Chase"
    assert await names(client, path, user) == [
        "Assets:Banking",
        "Assets:Banks:Chase",
        "Assets:Banks:Chase:Checking",
        "Assets:Banks:Chase:Checking:Joint",
        "Assets:bank:x",
    ]
    # Moving to another root changes the type of the whole subtree.
    response = await client.patch(
        f"{path}/{bank['id']}", json={"name": "Liabilities:Chase"}, headers=user.headers
    )
    assert response.status_code == 200
    assert response.json()["type"] == "liability"
    listed = (await client.get(path, params={"prefix": "Liabilities"}, headers=user.headers)).json()
    assert [(a["name"], a["type"]) for a in listed] == [
        ("Liabilities:Chase", "liability"),
        ("Liabilities:Chase:Checking", "liability"),
        ("Liabilities:Chase:Checking:Joint", "liability"),
    ]
    response = await client.patch(
        f"{path}/{bank['id']}",
        json={"name": "Liabilities:Chase", "type": "asset"},
        headers=user.headers,
    )
    assert response.status_code == 422
    # Moving up a level: a descendant takes the name the account leaves.
    response = await client.patch(
        f"{path}/{bank['id']}",
        json={"name": "Liabilities:Chase:Checking:Joint:X"},
        headers=user.headers,
    )
    assert response.status_code == 422
    checking = listed[1]
    response = await client.patch(
        f"{path}/{checking['id']}", json={"name": "Liabilities:Chase"}, headers=user.headers
    )
    assert response.status_code == 409


async def test_rename_up_through_its_own_descendants_names(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    _, path = await setup(client, user)
    outer = await create(client, path, user, name="Assets:A:A")
    for name in ("Assets:A:A:A", "Assets:A:A:A:A"):
        await create(client, path, user, name=name)
    response = await client.patch(
        f"{path}/{outer['id']}", json={"name": "Assets:A"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    assert await names(client, path, user) == ["Assets:A", "Assets:A:A", "Assets:A:A:A"]


async def test_rename_onto_an_existing_name_changes_nothing(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    _, path = await setup(client, user)
    cash = await create(client, path, user, name="Assets:Cash")
    await create(client, path, user, name="Assets:Cash:Wallet")
    await create(client, path, user, name="Assets:Purse:Wallet")
    response = await client.patch(
        f"{path}/{cash['id']}", json={"name": "Assets:Purse", "note": "x"}, headers=user.headers
    )
    assert response.status_code == 409
    assert "Assets:Purse:Wallet" in response.json()["detail"]
    assert await names(client, path, user) == [
        "Assets:Cash",
        "Assets:Cash:Wallet",
        "Assets:Purse:Wallet",
    ]
    assert (await client.get(f"{path}/{cash['id']}", headers=user.headers)).json()["note"] is None


async def test_update_fields_and_clear_them(client: httpx.AsyncClient, user: AuthedUser) -> None:
    _, path = await setup(client, user)
    account = await create(
        client, path, user, name="Assets:Cash", note="n", allowed_commodities=["USD"]
    )
    one = f"{path}/{account['id']}"
    response = await client.patch(
        one,
        json={"note": None, "allowed_commodities": None, "opened_on": "2020-01-01"},
        headers=user.headers,
    )
    assert response.status_code == 200
    assert response.json()["note"] is None
    assert response.json()["allowed_commodities"] is None
    assert response.json()["opened_on"] == "2020-01-01"
    for body in ({"name": None}, {"closed_on": "2019-12-31"}, {"ledger_id": "x"}, {"id": "x"}):
        response = await client.patch(one, json=body, headers=user.headers)
        assert response.status_code == 422, body


async def _ledger_with_postings(
    client: httpx.AsyncClient, database: Database, user: AuthedUser
) -> tuple[str, dict[str, object], dict[str, object]]:
    ledger_id, path = await setup(client, user)
    cash = await create(client, path, user, name="Assets:Cash")
    food = await create(client, path, user, name="Expenses:Food")
    for day in (datetime.date(2024, 1, 10), datetime.date(2024, 3, 10)):
        await insert_transaction(
            database, ledger_id, day, [(food["id"], "USD", 1250), (cash["id"], "USD", -1250)]
        )
    return path, cash, food


async def test_an_account_with_postings_cannot_be_deleted(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    path, cash, _ = await _ledger_with_postings(client, database, user)
    response = await client.delete(f"{path}/{cash['id']}", headers=user.headers)
    assert response.status_code == 409
    assert "close it instead" in response.json()["detail"]
    unused = await create(client, path, user, name="Assets:Unused")
    assert (await client.delete(f"{path}/{unused['id']}", headers=user.headers)).status_code == 204
    assert (await client.get(f"{path}/{unused['id']}", headers=user.headers)).status_code == 404
    assert (await client.delete(f"{path}/{unused['id']}", headers=user.headers)).status_code == 404


async def test_dates_and_commodities_cannot_strand_postings(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    path, cash, _ = await _ledger_with_postings(client, database, user)
    one = f"{path}/{cash['id']}"
    for body, fragment in (
        ({"opened_on": "2024-01-11"}, "before opened_on"),
        ({"closed_on": "2024-03-09"}, "after closed_on"),
        ({"allowed_commodities": ["EUR"]}, "has postings in USD"),
    ):
        response = await client.patch(one, json=body, headers=user.headers)
        assert response.status_code == 422, body
        assert fragment in response.json()["detail"]
    response = await client.patch(
        one,
        json={"opened_on": "2024-01-10", "closed_on": "2024-03-10", "allowed_commodities": ["USD"]},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text


async def test_check_account_accepts() -> None:
    account = Account(
        name="Assets:Cash",
        type=AccountType.ASSET,
        opened_on=datetime.date(2024, 1, 1),
        closed_on=datetime.date(2024, 12, 31),
        allowed_commodities=["USD"],
    )
    check_account_accepts(account, datetime.date(2024, 1, 1), "USD")
    check_account_accepts(account, datetime.date(2024, 12, 31), "USD")
    for day, code, fragment in (
        (datetime.date(2023, 12, 31), "USD", "opens on 2024-01-01"),
        (datetime.date(2025, 1, 1), "USD", "closed on 2024-12-31"),
        (datetime.date(2024, 6, 1), "EUR", "takes only USD, not EUR"),
    ):
        with pytest.raises(Unprocessable, match=fragment):
            check_account_accepts(account, day, code)
    check_account_accepts(Account(name="Assets:Any"), datetime.date(1900, 1, 1), "XYZ")


async def test_viewers_read_and_strangers_see_nothing(
    client: httpx.AsyncClient, make_user: UserFactory, database: Database
) -> None:
    owner, viewer, stranger = await make_user(), await make_user(), await make_user()
    ledger_id, path = await setup(client, owner)
    await add_member(client, owner, ledger_id, viewer, "viewer")
    cash = await create(client, path, owner, name="Assets:Cash")
    one = f"{path}/{cash['id']}"
    assert await names(client, path, viewer) == ["Assets:Cash"]
    assert (await client.get(one, headers=viewer.headers)).status_code == 200
    for response in (
        await client.post(path, json={"name": "Assets:X"}, headers=viewer.headers),
        await client.patch(one, json={"note": "x"}, headers=viewer.headers),
        await client.delete(one, headers=viewer.headers),
    ):
        assert response.status_code == 403
    # Another ledger's account, seen from a ledger of the stranger's own, is missing.
    _, own = await setup(client, stranger)
    for target in (f"{own}/{cash['id']}", f"{own}/{uuid.uuid4()}"):
        got = [
            await client.get(target, headers=stranger.headers),
            await client.patch(target, json={"note": "x"}, headers=stranger.headers),
            await client.delete(target, headers=stranger.headers),
        ]
        assert [r.status_code for r in got] == [404, 404, 404]
        assert {r.json()["detail"] for r in got} == {"No such account"}
    assert (await client.get(one, headers=stranger.headers)).status_code == 404
    async with database.sessions() as session:
        assert await session.scalar(select(Account.note)) is None
