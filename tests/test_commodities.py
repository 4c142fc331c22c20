"""Commodities: ISO minor units, custom precisions, exact rescaling when a precision rises."""

from __future__ import annotations

import datetime
import uuid

import httpx
from sqlalchemy import select

from finance.db import Database
from finance.models import BalanceAssertion, Commodity, Posting
from finance.money import MAX_MINOR_UNITS
from tests.conftest import UserFactory
from tests.test_ledgers import add_member, create_ledger, insert_transaction

DAY = datetime.date(2024, 3, 1)


async def setup(client: httpx.AsyncClient, make_user: UserFactory) -> tuple[str, dict[str, str]]:
    owner = await make_user()
    ledger = await create_ledger(client, owner)
    return f"/api/v1/ledgers/{ledger['id']}/commodities", owner.headers


async def test_iso_currencies_get_their_standard_minor_units(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    path, headers = await setup(client, make_user)
    for code, precision in (("JPY", 0), ("BHD", 3), ("CLF", 4), ("EUR", 2)):
        response = await client.post(path, json={"code": code}, headers=headers)
        assert response.status_code == 201, response.text
        assert response.json()["precision"] == precision
        assert response.json()["name"]
    # More decimals than the standard are allowed (fuel prices), fewer are not.
    response = await client.post(path, json={"code": "GBP", "precision": 4}, headers=headers)
    assert response.json()["precision"] == 4
    response = await client.post(path, json={"code": "CHF", "precision": 1}, headers=headers)
    assert response.status_code == 422
    assert "cannot be lower" in response.json()["detail"]
    listed = await client.get(path, headers=headers)
    assert [c["code"] for c in listed.json()] == ["BHD", "CLF", "EUR", "GBP", "JPY", "USD"]


async def test_custom_codes_need_a_precision_of_0_to_18(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    path, headers = await setup(client, make_user)
    for code, precision in (("ITOT", 0), ("BTC", 8), ("VACHR", 18), ("XAU", 3), ("A.B-C_D'E", 2)):
        response = await client.post(
            path, json={"code": code, "precision": precision, "name": "x"}, headers=headers
        )
        assert response.status_code == 201, (code, response.text)
    response = await client.post(path, json={"code": "ETH"}, headers=headers)
    assert response.status_code == 422
    assert "give its precision" in response.json()["detail"]
    for body in (
        {"code": "ETH", "precision": 19},
        {"code": "ETH", "precision": -1},
        {"code": "ETH", "precision": "2"},
        {"code": "eth", "precision": 2},
        {"code": "1ETH", "precision": 2},
        {"code": "ETH-", "precision": 2},
        {"code": "E" * 25, "precision": 2},
        {"code": "ETH", "precision": 2, "id": str(uuid.uuid4())},
        {"code": "ETH", "precision": 2, "ledger_id": str(uuid.uuid4())},
    ):
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 422, body


async def test_codes_are_unique_per_ledger(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    path, headers = await setup(client, make_user)
    response = await client.post(path, json={"code": "USD"}, headers=headers)
    assert response.status_code == 409  # created with the ledger
    assert (
        await client.post(path, json={"code": "BTC", "precision": 8}, headers=headers)
    ).status_code == 201
    response = await client.post(path, json={"code": "BTC", "precision": 2}, headers=headers)
    assert response.status_code == 409
    other, other_headers = await setup(client, make_user)
    response = await client.post(other, json={"code": "BTC", "precision": 2}, headers=other_headers)
    assert response.status_code == 201


async def test_rename_and_read(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    path, headers = await setup(client, make_user)
    created = await client.post(path, json={"code": "ITOT", "precision": 3}, headers=headers)
    one = f"{path}/{created.json()['id']}"
    response = await client.patch(one, json={"name": "iShares Core S&P"}, headers=headers)
    assert response.status_code == 200
    assert response.json()["name"] == "iShares Core S&P"
    assert (await client.get(one, headers=headers)).json() == response.json()
    for body in ({"code": "XYZ"}, {"id": str(uuid.uuid4())}, {"precision": None}):
        response = await client.patch(one, json=body, headers=headers)
        assert response.status_code == 422, body


async def test_viewers_read_and_cannot_write(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, viewer = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    await add_member(client, owner, ledger["id"], viewer, "viewer")
    path = f"/api/v1/ledgers/{ledger['id']}/commodities"
    usd = (await client.get(path, headers=viewer.headers)).json()[0]
    assert (await client.get(f"{path}/{usd['id']}", headers=viewer.headers)).status_code == 200
    response = await client.post(path, json={"code": "EUR"}, headers=viewer.headers)
    assert response.status_code == 403
    response = await client.patch(f"{path}/{usd['id']}", json={"name": "x"}, headers=viewer.headers)
    assert response.status_code == 403


async def test_another_ledgers_commodity_is_not_found(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    path, headers = await setup(client, make_user)
    other, other_headers = await setup(client, make_user)
    theirs = (await client.get(other, headers=other_headers)).json()[0]["id"]
    for commodity_id in (theirs, str(uuid.uuid4())):
        response = await client.get(f"{path}/{commodity_id}", headers=headers)
        assert response.status_code == 404
        assert response.json()["detail"] == "No such commodity"
        response = await client.patch(
            f"{path}/{commodity_id}", json={"precision": 4}, headers=headers
        )
        assert response.status_code == 404
    response = await client.get(f"{other}/{theirs}", headers=headers)
    assert response.status_code == 404
    assert response.json()["detail"] == "No such ledger"


async def _accounts(
    client: httpx.AsyncClient, ledger_path: str, headers: dict[str, str], *names: str
) -> list[str]:
    ids = []
    for name in names:
        response = await client.post(
            f"{ledger_path}/accounts", json={"name": name}, headers=headers
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_raising_a_precision_rescales_every_amount_exactly(
    client: httpx.AsyncClient, make_user: UserFactory, database: Database
) -> None:
    owner = await make_user()
    ledger = await create_ledger(client, owner)
    other = await create_ledger(client, owner, name="Other")
    base = f"/api/v1/ledgers/{ledger['id']}"
    headers = owner.headers
    itot = await client.post(
        f"{base}/commodities", json={"code": "ITOT", "precision": 0}, headers=headers
    )
    cash, shares, spend = await _accounts(
        client, base, headers, "Assets:Cash", "Assets:Broker", "Expenses:Fees"
    )
    # 3 ITOT bought for 123.45 USD; then 0.01 USD of fees.
    await insert_transaction(
        database,
        ledger["id"],
        DAY,
        [(shares, "ITOT", 3), (cash, "USD", -12345)],
        weights=[(12345, "USD"), (-12345, "USD")],
    )
    await insert_transaction(database, ledger["id"], DAY, [(spend, "USD", 1), (cash, "USD", -1)])
    other_cash, other_spend = await _accounts(
        client, f"/api/v1/ledgers/{other['id']}", headers, "Assets:Cash", "Expenses:Fees"
    )
    await insert_transaction(
        database, other["id"], DAY, [(other_spend, "USD", 7), (other_cash, "USD", -7)]
    )
    ledger_id = uuid.UUID(str(ledger["id"]))
    async with database.sessions.begin() as session:
        usd = await session.scalar(
            select(Commodity.id).where(Commodity.ledger_id == ledger_id, Commodity.code == "USD")
        )
        session.add(
            BalanceAssertion(
                ledger_id=ledger_id,
                account_id=uuid.UUID(cash),
                date=DAY,
                commodity_id=usd,
                amount=-12346,
            )
        )
    usd_path = f"{base}/commodities/{usd}"
    response = await client.patch(usd_path, json={"precision": 5}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["precision"] == 5
    response = await client.patch(
        f"{base}/commodities/{itot.json()['id']}", json={"precision": 4}, headers=headers
    )
    assert response.status_code == 200
    async with database.sessions() as session:
        rows = (
            await session.execute(
                select(
                    Posting.ledger_id, Posting.account_id, Posting.amount, Posting.weight
                ).order_by(Posting.ledger_id == ledger_id, Posting.account_id, Posting.amount)
            )
        ).all()
        postings = {
            (row.account_id, row.amount, row.weight) for row in rows if row.ledger_id == ledger_id
        }
        assert postings == {
            (uuid.UUID(shares), 30_000, 12_345_000),
            (uuid.UUID(cash), -12_345_000, -12_345_000),
            (uuid.UUID(spend), 1_000, 1_000),
            (uuid.UUID(cash), -1_000, -1_000),
        }
        untouched = {(row.amount, row.weight) for row in rows if row.ledger_id != ledger_id}
        assert untouched == {(7, 7), (-7, -7)}
        assertion = await session.scalar(select(BalanceAssertion.amount))
        assert assertion == -12_346_000
    # Lowering, or a null, is refused; the same precision changes nothing.
    response = await client.patch(usd_path, json={"precision": 2}, headers=headers)
    assert response.status_code == 422
    assert "can only be raised" in response.json()["detail"]
    response = await client.patch(usd_path, json={"precision": 5}, headers=headers)
    assert response.status_code == 200
    audit = await client.get(f"{base}/audit", params={"object_id": str(usd)}, headers=headers)
    changes = [
        (e["before"]["precision"], e["after"]["precision"])
        for e in audit.json()["items"]
        if e["action"] == "update"
    ]
    assert changes == [(2, 5)]


async def test_a_raise_that_would_overflow_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, make_user: UserFactory, database: Database
) -> None:
    owner = await make_user()
    ledger = await create_ledger(client, owner)
    base = f"/api/v1/ledgers/{ledger['id']}"
    btc = await client.post(
        f"{base}/commodities", json={"code": "BTC", "precision": 8}, headers=owner.headers
    )
    cash, equity = await _accounts(client, base, owner.headers, "Assets:Wallet", "Equity:Opening")
    huge = MAX_MINOR_UNITS // 10  # fits now, not after three more decimals
    await insert_transaction(
        database, ledger["id"], DAY, [(cash, "BTC", huge), (equity, "BTC", -huge)]
    )
    path = f"{base}/commodities/{btc.json()['id']}"
    response = await client.patch(path, json={"precision": 11}, headers=owner.headers)
    assert response.status_code == 422
    assert "too large" in response.json()["detail"]
    assert (await client.get(path, headers=owner.headers)).json()["precision"] == 8
    async with database.sessions() as session:
        amounts = set((await session.scalars(select(Posting.amount))).all())
    assert amounts == {huge, -huge}
    response = await client.patch(path, json={"precision": 9}, headers=owner.headers)
    assert response.status_code == 200
    async with database.sessions() as session:
        amounts = set((await session.scalars(select(Posting.amount))).all())
    assert amounts == {huge * 10, -huge * 10}
