"""Ledgers: creation, listing by membership, owner-only changes, deletion, tenancy."""

from __future__ import annotations

import datetime
import uuid

import httpx
from sqlalchemy import func, select

from finance.db import Database
from finance.models import Account, Commodity, Ledger, Posting, Transaction
from tests.conftest import AuthedUser, UserFactory


async def create_ledger(
    client: httpx.AsyncClient, user: AuthedUser, name: str = "Home", base: str = "USD"
) -> dict[str, object]:
    response = await client.post(
        "/api/v1/ledgers", json={"name": name, "base_currency": base}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def add_member(
    client: httpx.AsyncClient, owner: AuthedUser, ledger_id: object, member: AuthedUser, role: str
) -> None:
    response = await client.post(
        f"/api/v1/ledgers/{ledger_id}/members",
        json={"email": member.email, "role": role},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text


async def insert_transaction(
    database: Database,
    ledger_id: object,
    date: datetime.date,
    legs: list[tuple[object, str, int]],
    *,
    weights: list[tuple[int, str]] | None = None,
) -> uuid.UUID:
    """A transaction written straight to the database: (account id, commodity code, minor
    units) per posting; `weights` (minor units, commodity) default to the units themselves."""
    ledger = uuid.UUID(str(ledger_id))
    async with database.sessions.begin() as session:
        codes = {code for _, code, _ in legs} | {code for _, code in weights or []}
        rows = await session.execute(
            select(Commodity.code, Commodity.id).where(
                Commodity.ledger_id == ledger, Commodity.code.in_(codes)
            )
        )
        ids = {code: commodity_id for code, commodity_id in rows}
        transaction = Transaction(ledger_id=ledger, date=date)
        session.add(transaction)
        await session.flush()
        for position, (account_id, code, amount) in enumerate(legs):
            weight, weight_code = weights[position] if weights else (amount, code)
            session.add(
                Posting(
                    ledger_id=ledger,
                    transaction_id=transaction.id,
                    position=position,
                    date=date,
                    account_id=uuid.UUID(str(account_id)),
                    commodity_id=ids[code],
                    amount=amount,
                    weight=weight,
                    weight_commodity_id=ids[weight_code],
                )
            )
    return transaction.id


async def test_create_makes_the_creator_owner_and_adds_the_base_currency(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    ledger = await create_ledger(client, user, name="  Smith household ", base="JPY")
    assert ledger["name"] == "Smith household"
    assert ledger["base_currency"] == "JPY"
    assert ledger["role"] == "owner"
    assert ledger["created_by"] == user.id
    response = await client.get(f"/api/v1/ledgers/{ledger['id']}", headers=user.headers)
    assert response.status_code == 200
    assert response.json() == ledger
    commodities = await client.get(
        f"/api/v1/ledgers/{ledger['id']}/commodities", headers=user.headers
    )
    assert [(c["code"], c["precision"]) for c in commodities.json()] == [("JPY", 0)]


async def test_list_shows_only_my_ledgers_with_my_role(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    alice, bob = await make_user(), await make_user()
    home = await create_ledger(client, alice, name="Home")
    shop = await create_ledger(client, bob, name="Shop")
    await create_ledger(client, bob, name="Bob's own")
    await add_member(client, bob, shop["id"], alice, "viewer")
    response = await client.get("/api/v1/ledgers", headers=alice.headers)
    assert response.status_code == 200
    assert [(item["name"], item["role"]) for item in response.json()] == [
        ("Home", "owner"),
        ("Shop", "viewer"),
    ]
    assert home["id"] in {item["id"] for item in response.json()}


async def test_base_currency_must_be_iso_at_creation(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    for base, fragment in (("ITOT", "not an ISO 4217"), ("usd", "not valid"), ("XAU", "ISO")):
        response = await client.post(
            "/api/v1/ledgers", json={"name": "x", "base_currency": base}, headers=user.headers
        )
        assert response.status_code == 422, base
        assert fragment in response.json()["detail"]


async def test_bad_bodies_are_refused(client: httpx.AsyncClient, user: AuthedUser) -> None:
    for body in (
        {"name": "", "base_currency": "USD"},
        {"name": "x"},
        {"name": "x", "base_currency": "USD", "id": str(uuid.uuid4())},
        {"name": "x", "base_currency": "USD", "created_by": str(uuid.uuid4())},
        {"name": "x", "base_currency": "USD", "role": "owner"},
    ):
        response = await client.post("/api/v1/ledgers", json=body, headers=user.headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    ledger = await create_ledger(client, user)
    response = await client.patch(
        f"/api/v1/ledgers/{ledger['id']}", json={"name": None}, headers=user.headers
    )
    assert response.status_code == 422
    response = await client.patch(
        f"/api/v1/ledgers/{ledger['id']}", json={"ledger_id": "x"}, headers=user.headers
    )
    assert response.status_code == 422


async def test_owner_renames_and_changes_base_currency(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    ledger = await create_ledger(client, user)
    path = f"/api/v1/ledgers/{ledger['id']}"
    response = await client.post(
        f"{path}/commodities", json={"code": "VACHR", "precision": 1}, headers=user.headers
    )
    assert response.status_code == 201
    response = await client.patch(
        path, json={"name": "Renamed", "base_currency": "EUR"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    assert response.json()["base_currency"] == "EUR"
    # An existing custom commodity may be the base; an unknown code may not.
    response = await client.patch(path, json={"base_currency": "VACHR"}, headers=user.headers)
    assert response.status_code == 200
    response = await client.patch(path, json={"base_currency": "NOPE"}, headers=user.headers)
    assert response.status_code == 422
    assert "Unknown commodity" in response.json()["detail"]
    codes = await client.get(f"{path}/commodities", headers=user.headers)
    assert [c["code"] for c in codes.json()] == ["EUR", "USD", "VACHR"]


async def test_only_owners_change_or_delete(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, editor, viewer = await make_user(), await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    await add_member(client, owner, ledger["id"], editor, "editor")
    await add_member(client, owner, ledger["id"], viewer, "viewer")
    path = f"/api/v1/ledgers/{ledger['id']}"
    for member in (editor, viewer):
        assert (await client.get(path, headers=member.headers)).status_code == 200
        response = await client.patch(path, json={"name": "Mine"}, headers=member.headers)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert (await client.delete(path, headers=member.headers)).status_code == 403
    assert (await client.get(path, headers=owner.headers)).json()["name"] == "Home"


async def test_another_users_ledger_is_not_found(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, stranger = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    missing = f"/api/v1/ledgers/{uuid.uuid4()}"
    theirs = f"/api/v1/ledgers/{ledger['id']}"
    for path in (missing, theirs):
        got = [
            await client.get(path, headers=stranger.headers),
            await client.patch(path, json={"name": "x"}, headers=stranger.headers),
            await client.delete(path, headers=stranger.headers),
            await client.get(f"{path}/members", headers=stranger.headers),
            await client.get(f"{path}/accounts", headers=stranger.headers),
            await client.get(f"{path}/audit", headers=stranger.headers),
        ]
        assert [response.status_code for response in got] == [404] * len(got)
        assert {response.json()["detail"] for response in got} == {"No such ledger"}
    assert (await client.get(theirs)).status_code == 401


async def test_delete_removes_everything_in_the_ledger(
    client: httpx.AsyncClient, make_user: UserFactory, database: Database
) -> None:
    owner = await make_user()
    ledger = await create_ledger(client, owner)
    kept = await create_ledger(client, owner, name="Kept")
    path = f"/api/v1/ledgers/{ledger['id']}"
    ids = []
    for name in ("Assets:Cash", "Expenses:Food"):
        response = await client.post(f"{path}/accounts", json={"name": name}, headers=owner.headers)
        ids.append(uuid.UUID(response.json()["id"]))
    await insert_transaction(
        database,
        ledger["id"],
        datetime.date(2024, 1, 2),
        [(ids[0], "USD", -500), (ids[1], "USD", 500)],
    )
    response = await client.delete(path, headers=owner.headers)
    assert response.status_code == 204
    assert (await client.get(path, headers=owner.headers)).status_code == 404
    async with database.sessions() as session:
        for model in (Ledger, Account, Posting, Transaction, Commodity):
            count = await session.scalar(select(func.count()).select_from(model))
            assert count == (1 if model in (Ledger, Commodity) else 0), model
    listed = await client.get("/api/v1/ledgers", headers=owner.headers)
    assert [item["id"] for item in listed.json()] == [kept["id"]]
