"""Transactions: create, read, replace, patch, delete; ETag and If-Match; audit; roles."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from finance.db import Database
from finance.models import AuditEntry, Posting
from tests.books import Books, add_member, counts, open_books
from tests.conftest import AuthedUser, UserFactory, assert_problem

CHECKING = "Assets:Bank:Checking"
FOOD = "Expenses:Food"
RENT = "Expenses:Rent"


async def _books(client: httpx.AsyncClient, user: AuthedUser) -> Books:
    return await open_books(client, user, CHECKING, FOOD, RENT)


async def test_create_answers_201_with_location_etag_and_the_filled_amount(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    response = await books.post(
        "2024-03-01",
        (FOOD, "12.3", "USD", {"memo": "bread"}),
        (CHECKING, None, None),
        payee="Bakery",
        narration="Saturday",
        tags=["food"],
        links=["receipt-1"],
        meta={"source": "manual", "count": 2, "ok": True, "none": None},
        status="pending",
        external_id="bank-123",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"{books.url}/transactions/{body['id']}"
    assert body["version"] == 1
    assert body["created_by"] == user.id
    assert [(p["amount"], p["commodity"]) for p in body["postings"]] == [
        ("12.30", "USD"),
        ("-12.30", "USD"),
    ]
    assert body["postings"][0]["memo"] == "bread"
    assert body["postings"][1]["weight"] == {"amount": "-12.30", "commodity": "USD"}
    assert body["residual"] == {}
    assert body["tags"] == ["food"]
    assert body["links"] == ["receipt-1"]
    assert body["meta"] == {"source": "manual", "count": 2, "ok": True, "none": None}
    assert (body["status"], body["external_id"]) == ("pending", "bank-123")

    fetched = await client.get(response.headers["Location"], headers=user.headers)
    assert fetched.status_code == 200
    assert fetched.headers["ETag"] == '"1"'
    assert fetched.json() == body


async def test_postings_repeat_the_transaction_date_and_store_minor_units(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await _books(client, user)
    created = await books.create("2024-03-01", (FOOD, "12.30", "USD"), (CHECKING, "-12.30", "USD"))
    async with database.sessions() as session:
        postings = (await session.scalars(select(Posting).order_by(Posting.position))).all()
    assert [(p.date.isoformat(), p.amount, p.weight, p.position) for p in postings] == [
        ("2024-03-01", 1230, 1230, 0),
        ("2024-03-01", -1230, -1230, 1),
    ]
    assert {str(p.transaction_id) for p in postings} == {created["id"]}


async def test_put_replaces_everything_and_bumps_the_version(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    created = await books.create("2024-03-01", (FOOD, "10.00", "USD"), (CHECKING, None, None))
    url = f"{books.url}/transactions/{created['id']}"
    body = books.body("2024-03-02", (RENT, "700.00", "USD"), (CHECKING, "-700.00", "USD"))
    response = await client.put(url, json=body, headers={**user.headers, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert response.headers["ETag"] == '"2"'
    assert updated["version"] == 2
    assert updated["date"] == "2024-03-02"
    assert updated["payee"] is None
    assert [p["account_id"] for p in updated["postings"]] == [books.id(RENT), books.id(CHECKING)]
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] > created["updated_at"]
    assert (await client.get(url, headers=user.headers)).json() == updated


async def test_patch_changes_only_what_it_names_and_keeps_unchanged_postings(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await _books(client, user)
    created = await books.create(
        "2024-03-01", (FOOD, "10.00", "USD"), (CHECKING, None, None), payee="Shop", tags=["a"]
    )
    url = f"{books.url}/transactions/{created['id']}"
    response = await client.patch(
        url, json={"status": "reconciled", "date": "2024-03-05"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert (patched["status"], patched["date"], patched["payee"], patched["tags"]) == (
        "reconciled",
        "2024-03-05",
        "Shop",
        ["a"],
    )
    assert [p["id"] for p in patched["postings"]] == [p["id"] for p in created["postings"]]
    async with database.sessions() as session:
        dates = set((await session.scalars(select(Posting.date))).all())
    assert {d.isoformat() for d in dates} == {"2024-03-05"}

    response = await client.patch(
        url,
        json={
            "payee": None,
            "postings": [
                {"account_id": books.id(FOOD), "amount": "4.00", "commodity": "USD"},
                {"account_id": books.id(CHECKING), "amount": "-4.00", "commodity": "USD"},
            ],
        },
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["payee"] is None
    assert patched["version"] == 3
    assert [p["amount"] for p in patched["postings"]] == ["4.00", "-4.00"]
    assert patched["postings"][0]["id"] != created["postings"][0]["id"]


async def test_patch_that_unbalances_or_nulls_a_required_field_is_refused(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    created = await books.create("2024-03-01", (FOOD, "10.00", "USD"), (CHECKING, None, None))
    url = f"{books.url}/transactions/{created['id']}"
    for body in (
        {"date": None},
        {"postings": None},
        {"postings": [{"account_id": books.id(FOOD), "amount": "1.00", "commodity": "USD"}] * 2},
        {"id": created["id"]},
    ):
        assert_problem(await client.patch(url, json=body, headers=user.headers), 422)
    assert (await client.get(url, headers=user.headers)).json() == created


async def test_stale_if_match_gets_412_and_changes_nothing(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    created = await books.create("2024-03-01", (FOOD, "10.00", "USD"), (CHECKING, None, None))
    url = f"{books.url}/transactions/{created['id']}"
    first = await client.patch(
        url, json={"payee": "A"}, headers={**user.headers, "If-Match": '"1"'}
    )
    assert first.status_code == 200
    for method, tag in (("PATCH", '"1"'), ("PATCH", 'W/"1", "7"'), ("DELETE", '"1"')):
        response = await client.request(
            method,
            url,
            json={"payee": "B"} if method == "PATCH" else None,
            headers={**user.headers, "If-Match": tag},
        )
        body = assert_problem(response, 412)
        assert body["current_version"] == 2
    body = books.body("2024-03-01", (FOOD, "1.00", "USD"), (CHECKING, None, None))
    stale_put = await client.put(url, json=body, headers={**user.headers, "If-Match": "junk"})
    assert_problem(stale_put, 412)
    current = (await client.get(url, headers=user.headers)).json()
    assert (current["payee"], current["version"]) == ("A", 2)
    # The weak form of the current tag, a list holding it, and * all match.
    for version, tag in ((2, 'W/"2"'), (3, '"9", "3"'), (4, "*")):
        response = await client.patch(
            url, json={"narration": tag}, headers={**user.headers, "If-Match": tag}
        )
        assert response.status_code == 200, response.text
        assert response.headers["ETag"] == f'"{version + 1}"'


async def test_two_concurrent_updates_with_the_same_version_cannot_both_win(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await _books(client, user)
    created = await books.create("2024-03-01", (FOOD, "10.00", "USD"), (CHECKING, None, None))
    url = f"{books.url}/transactions/{created['id']}"
    responses = await asyncio.gather(
        *(
            client.patch(
                url, json={"payee": f"writer {n}"}, headers={**user.headers, "If-Match": '"1"'}
            )
            for n in range(6)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 412, 412, 412, 412, 412]
    current = (await client.get(url, headers=user.headers)).json()
    assert current["version"] == 2


async def test_delete_removes_the_postings_and_answers_404_after(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await _books(client, user)
    created = await books.create("2024-03-01", (FOOD, "10.00", "USD"), (CHECKING, None, None))
    url = f"{books.url}/transactions/{created['id']}"
    response = await client.delete(url, headers={**user.headers, "If-Match": '"1"'})
    assert response.status_code == 204
    assert (await counts(database))["postings"] == 0
    assert_problem(await client.get(url, headers=user.headers), 404)
    assert_problem(await client.delete(url, headers=user.headers), 404)


async def test_every_change_is_in_the_audit_log_with_before_and_after(
    client: httpx.AsyncClient, user: AuthedUser, database: Database
) -> None:
    books = await _books(client, user)
    created = await books.create("2024-03-01", (FOOD, "10.00", "USD"), (CHECKING, None, None))
    url = f"{books.url}/transactions/{created['id']}"
    patched = (await client.patch(url, json={"payee": "A"}, headers=user.headers)).json()
    assert (await client.delete(url, headers=user.headers)).status_code == 204
    async with database.sessions() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.object_type == "transaction")
                .order_by(AuditEntry.at, AuditEntry.action)
            )
        ).all()
    assert [(e.action, str(e.object_id), str(e.user_id)) for e in entries] == [
        ("create", created["id"], user.id),
        ("update", created["id"], user.id),
        ("delete", created["id"], user.id),
    ]
    assert (entries[0].before, entries[0].after) == (None, created)
    assert (entries[1].before, entries[1].after) == (created, patched)
    assert (entries[2].before, entries[2].after) == (patched, None)


async def test_viewer_reads_but_cannot_write_and_outsiders_see_nothing(
    client: httpx.AsyncClient, user: AuthedUser, make_user: UserFactory, database: Database
) -> None:
    books = await _books(client, user)
    viewer, outsider = await make_user(), await make_user()
    await add_member(books, viewer, "viewer")
    created = await books.create("2024-03-01", (FOOD, "10.00", "USD"), (CHECKING, None, None))
    url = f"{books.url}/transactions/{created['id']}"
    before = await counts(database)

    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    listed = await client.get(f"{books.url}/transactions", headers=viewer.headers)
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    body = books.body("2024-03-01", (FOOD, "1.00", "USD"), (CHECKING, None, None))
    assert_problem(
        await books.post("2024-03-01", (FOOD, "1", "USD"), (CHECKING, None, None), user=viewer), 403
    )
    assert_problem(await client.put(url, json=body, headers=viewer.headers), 403)
    assert_problem(await client.patch(url, json={"payee": "x"}, headers=viewer.headers), 403)
    assert_problem(await client.delete(url, headers=viewer.headers), 403)

    for response in (
        await client.get(url, headers=outsider.headers),
        await client.get(f"{books.url}/transactions", headers=outsider.headers),
        await client.patch(url, json={"payee": "x"}, headers=outsider.headers),
        await client.delete(url, headers=outsider.headers),
        await books.post("2024-03-01", (FOOD, "1", "USD"), (CHECKING, None, None), user=outsider),
    ):
        assert_problem(response, 404)
    assert await counts(database) == before


async def test_another_ledgers_transaction_answers_404_like_a_missing_one(
    client: httpx.AsyncClient, user: AuthedUser, make_user: UserFactory
) -> None:
    mine = await _books(client, user)
    other_user = await make_user()
    theirs = await _books(client, other_user)
    created = await theirs.create("2024-03-01", (FOOD, "10.00", "USD"), (CHECKING, None, None))
    # Through my own ledger's path, their transaction's id is unknown.
    url = f"{mine.url}/transactions/{created['id']}"
    missing = assert_problem(await client.get(url, headers=user.headers), 404)
    unknown = assert_problem(
        await client.get(
            f"{mine.url}/transactions/{created['postings'][0]['id']}", headers=user.headers
        ),
        404,
    )
    assert missing["detail"] == unknown["detail"]
    assert_problem(await client.delete(url, headers=user.headers), 404)
    assert (await theirs.get(f"/transactions/{created['id']}"))["version"] == 1


async def test_a_price_posting_weighs_in_the_price_commodity(
    client: httpx.AsyncClient, user: AuthedUser
) -> None:
    books = await open_books(client, user, "Assets:Bank:Checking", "Assets:Bank:Euro")
    created = await books.create(
        "2024-03-01",
        ("Assets:Bank:Euro", "100.00", "EUR", {"price": {"amount": "1.0850", "commodity": "USD"}}),
        ("Assets:Bank:Checking", None, None),
    )
    euro, dollars = created["postings"]
    assert euro["price"] == {"amount": "1.0850", "commodity": "USD"}
    assert euro["weight"] == {"amount": "108.50", "commodity": "USD"}
    assert (dollars["amount"], dollars["commodity"]) == ("-108.50", "USD")
