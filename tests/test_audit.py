"""The audit log: who changed what, newest first, paginated and filtered; readers only."""

from __future__ import annotations

import uuid

import httpx

from finance.schemas import encode_cursor
from tests.books import open_books
from tests.conftest import UserFactory
from tests.test_ledgers import add_member, create_ledger


async def test_changes_are_logged_with_before_and_after(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, editor = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    base = f"/api/v1/ledgers/{ledger['id']}"
    await add_member(client, owner, ledger["id"], editor, "editor")
    await client.patch(base, json={"name": "Renamed"}, headers=owner.headers)
    account = (
        await client.post(f"{base}/accounts", json={"name": "Assets:Cash"}, headers=editor.headers)
    ).json()
    await client.patch(
        f"{base}/accounts/{account['id']}", json={"note": "wallet"}, headers=editor.headers
    )
    await client.delete(f"{base}/accounts/{account['id']}", headers=editor.headers)
    btc = (
        await client.post(
            f"{base}/commodities", json={"code": "BTC", "precision": 8}, headers=editor.headers
        )
    ).json()
    # An ISO currency added on first use is logged too.
    await client.post(
        f"{base}/accounts",
        json={"name": "Assets:Euro", "allowed_commodities": ["EUR"]},
        headers=editor.headers,
    )
    response = await client.get(f"{base}/audit", headers=owner.headers)
    assert response.status_code == 200
    entries = response.json()["items"]
    assert response.json()["next_cursor"] is None
    assert [(e["action"], e["object_type"]) for e in entries] == [
        ("create", "account"),
        ("create", "commodity"),
        ("create", "commodity"),
        ("delete", "account"),
        ("update", "account"),
        ("create", "account"),
        ("update", "ledger"),
        ("create", "member"),
        ("create", "commodity"),
        ("create", "member"),
        ("create", "ledger"),
    ]
    assert entries[1]["after"]["code"] == "EUR"
    assert entries[2]["object_id"] == btc["id"]
    deleted, updated, created = entries[3], entries[4], entries[5]
    assert deleted["before"]["note"] == "wallet"
    assert deleted["after"] is None
    assert updated["before"]["note"] is None
    assert updated["after"]["note"] == "wallet"
    assert created["before"] is None
    assert created["after"] == {**account}
    assert {e["user_id"] for e in entries[:6]} == {editor.id}
    assert entries[6]["before"]["name"] == "Home"
    assert entries[6]["after"]["name"] == "Renamed"
    assert entries[6]["user_id"] == owner.id


async def test_filters_and_pages(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    owner, viewer = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    base = f"/api/v1/ledgers/{ledger['id']}"
    await add_member(client, owner, ledger["id"], viewer, "viewer")
    ids = []
    for index in range(7):
        response = await client.post(
            f"{base}/accounts", json={"name": f"Assets:A{index}"}, headers=owner.headers
        )
        ids.append(response.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"object_type": "account", "limit": "3", **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{base}/audit", params=params, headers=viewer.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 3
        seen += [entry["object_id"] for entry in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    one = await client.get(f"{base}/audit", params={"object_id": ids[2]}, headers=viewer.headers)
    assert [e["object_id"] for e in one.json()["items"]] == [ids[2]]
    by_owner = await client.get(f"{base}/audit", params={"user": owner.id}, headers=viewer.headers)
    assert len(by_owner.json()["items"]) == 7 + 1 + 1 + 1 + 1  # accounts, ledger, 2 members, USD
    by_viewer = await client.get(
        f"{base}/audit", params={"user": viewer.id}, headers=viewer.headers
    )
    assert by_viewer.json()["items"] == []


async def test_bad_parameters_and_strangers(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, stranger = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    path = f"/api/v1/ledgers/{ledger['id']}/audit"
    for params in (
        {"limit": "1000000"},
        {"limit": "0"},
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4Il0"},  # ["x"]
        {"cursor": encode_cursor(["2024-01-01T00:00:00", str(uuid.UUID(int=0))])},  # naive
        {"object_id": "x"},
        {"user": "x"},
    ):
        response = await client.get(path, params=params, headers=owner.headers)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(path, headers=stranger.headers)).status_code == 404
    assert (await client.get(path)).status_code == 401


async def test_a_transactions_entries_hold_its_api_representation(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """What the audit log keeps of a created, updated and deleted transaction is exactly
    what the API answered (and answers on GET), timestamps and all."""
    owner = await make_user()
    books = await open_books(client, owner, "Assets:Cash", "Expenses:Food")
    created = await books.create(
        "2024-03-01",
        ("Expenses:Food", "12.34", "USD"),
        ("Assets:Cash", None, None),
        payee="Market",
        tags=["weekly"],
    )
    url = f"{books.url}/transactions/{created['id']}"
    fetched = (await client.get(url, headers=owner.headers)).json()
    assert fetched == created
    patched = await client.patch(url, json={"payee": "Grocer"}, headers=owner.headers)
    assert patched.status_code == 200, patched.text
    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    entries = (
        await client.get(
            f"{books.url}/audit",
            params={"object_type": "transaction", "object_id": created["id"]},
            headers=owner.headers,
        )
    ).json()["items"]
    deleted, updated, made = entries
    assert (made["action"], made["before"], made["after"]) == ("create", None, created)
    assert (updated["before"], updated["after"]) == (created, patched.json())
    assert (deleted["before"], deleted["after"]) == (patched.json(), None)
