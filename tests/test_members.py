"""Members and roles: adding by email, changing roles, leaving, and the last owner."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import UserFactory
from tests.test_ledgers import add_member, create_ledger


def members_path(ledger: dict[str, object]) -> str:
    return f"/api/v1/ledgers/{ledger['id']}/members"


async def test_owner_adds_members_and_everyone_sees_them(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, viewer = await make_user(), await make_user("Viewer@Example.com")
    ledger = await create_ledger(client, owner)
    response = await client.post(
        members_path(ledger),
        json={"email": "  VIEWER@example.COM ", "role": "viewer"},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["user_id"] == viewer.id
    assert response.json()["email"] == "viewer@example.com"
    assert response.json()["role"] == "viewer"
    listed = await client.get(members_path(ledger), headers=viewer.headers)
    assert listed.status_code == 200
    assert [(m["user_id"], m["role"]) for m in listed.json()] == [
        (owner.id, "owner"),
        (viewer.id, "viewer"),
    ]
    mine = await client.get("/api/v1/ledgers", headers=viewer.headers)
    assert [(item["id"], item["role"]) for item in mine.json()] == [(ledger["id"], "viewer")]


async def test_adding_unknown_duplicate_or_bad_members_is_refused(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, other = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    unknown = await client.post(
        members_path(ledger),
        json={"email": "nobody@example.com", "role": "editor"},
        headers=owner.headers,
    )
    assert unknown.status_code == 422
    assert "register first" in unknown.json()["detail"]
    await add_member(client, owner, ledger["id"], other, "editor")
    again = await client.post(
        members_path(ledger), json={"email": other.email, "role": "viewer"}, headers=owner.headers
    )
    assert again.status_code == 409
    for body in (
        {"email": other.email, "role": "admin"},
        {"email": "not-an-email", "role": "viewer"},
        {"email": other.email, "role": "viewer", "user_id": other.id},
    ):
        response = await client.post(members_path(ledger), json=body, headers=owner.headers)
        assert response.status_code == 422, body


async def test_only_owners_manage_members(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, editor, viewer, outsider = [await make_user() for _ in range(4)]
    ledger = await create_ledger(client, owner)
    await add_member(client, owner, ledger["id"], editor, "editor")
    await add_member(client, owner, ledger["id"], viewer, "viewer")
    path = members_path(ledger)
    for member in (editor, viewer):
        response = await client.post(
            path, json={"email": outsider.email, "role": "viewer"}, headers=member.headers
        )
        assert response.status_code == 403
        response = await client.patch(
            f"{path}/{owner.id}", json={"role": "viewer"}, headers=member.headers
        )
        assert response.status_code == 403
    response = await client.delete(f"{path}/{viewer.id}", headers=editor.headers)
    assert response.status_code == 403
    assert "only leave" in response.json()["detail"]
    response = await client.delete(f"{path}/{editor.id}", headers=outsider.headers)
    assert response.status_code == 404


async def test_roles_change_and_take_effect(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, member = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    await add_member(client, owner, ledger["id"], member, "viewer")
    accounts = f"/api/v1/ledgers/{ledger['id']}/accounts"
    write = {"name": "Assets:Cash"}
    assert (await client.post(accounts, json=write, headers=member.headers)).status_code == 403
    response = await client.patch(
        f"{members_path(ledger)}/{member.id}", json={"role": "editor"}, headers=owner.headers
    )
    assert response.status_code == 200
    assert response.json()["role"] == "editor"
    assert (await client.post(accounts, json=write, headers=member.headers)).status_code == 201
    response = await client.patch(
        f"{members_path(ledger)}/{member.id}", json={"role": "owner"}, headers=owner.headers
    )
    assert response.status_code == 200
    # Now an owner, the former viewer may demote the creator.
    response = await client.patch(
        f"{members_path(ledger)}/{owner.id}", json={"role": "viewer"}, headers=member.headers
    )
    assert response.status_code == 200
    response = await client.patch(
        f"/api/v1/ledgers/{ledger['id']}", json={"name": "x"}, headers=owner.headers
    )
    assert response.status_code == 403


async def test_the_last_owner_can_neither_leave_nor_be_demoted(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, editor = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    await add_member(client, owner, ledger["id"], editor, "editor")
    own = f"{members_path(ledger)}/{owner.id}"
    response = await client.delete(own, headers=owner.headers)
    assert response.status_code == 409
    assert "last owner" in response.json()["detail"]
    response = await client.patch(own, json={"role": "editor"}, headers=owner.headers)
    assert response.status_code == 409
    response = await client.patch(own, json={"role": "owner"}, headers=owner.headers)
    assert response.status_code == 200
    # With a second owner, the first may leave.
    await client.patch(
        f"{members_path(ledger)}/{editor.id}", json={"role": "owner"}, headers=owner.headers
    )
    assert (await client.delete(own, headers=owner.headers)).status_code == 204
    assert (await client.get(members_path(ledger), headers=owner.headers)).status_code == 404
    listed = await client.get(members_path(ledger), headers=editor.headers)
    assert [(m["user_id"], m["role"]) for m in listed.json()] == [(editor.id, "owner")]


async def test_a_member_may_leave_and_then_sees_nothing(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, viewer = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    await add_member(client, owner, ledger["id"], viewer, "viewer")
    response = await client.delete(f"{members_path(ledger)}/{viewer.id}", headers=viewer.headers)
    assert response.status_code == 204
    assert (
        await client.get(f"/api/v1/ledgers/{ledger['id']}", headers=viewer.headers)
    ).status_code == 404
    assert (await client.get("/api/v1/ledgers", headers=viewer.headers)).json() == []


async def test_owner_removes_a_member(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    owner, editor = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    await add_member(client, owner, ledger["id"], editor, "editor")
    path = f"{members_path(ledger)}/{editor.id}"
    assert (await client.delete(path, headers=owner.headers)).status_code == 204
    assert (await client.delete(path, headers=owner.headers)).status_code == 404
    assert (
        await client.patch(path, json={"role": "viewer"}, headers=owner.headers)
    ).status_code == 404
    missing = f"{members_path(ledger)}/{uuid.uuid4()}"
    assert (await client.delete(missing, headers=owner.headers)).status_code == 404


async def test_another_ledgers_member_is_not_found(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    alice, bob = await make_user(), await make_user()
    home = await create_ledger(client, alice)
    shop = await create_ledger(client, bob, name="Shop")
    await add_member(client, alice, home["id"], bob, "editor")
    # Alice owns Home, not Shop: Bob's membership of Shop is invisible to her.
    response = await client.patch(
        f"{members_path(shop)}/{bob.id}", json={"role": "viewer"}, headers=alice.headers
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "No such ledger"
    response = await client.patch(
        f"{members_path(home)}/{uuid.uuid4()}", json={"role": "viewer"}, headers=alice.headers
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "No such member"


async def test_membership_changes_are_audited(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, member = await make_user(), await make_user()
    ledger = await create_ledger(client, owner)
    await add_member(client, owner, ledger["id"], member, "viewer")
    await client.patch(
        f"{members_path(ledger)}/{member.id}", json={"role": "editor"}, headers=owner.headers
    )
    await client.delete(f"{members_path(ledger)}/{member.id}", headers=member.headers)
    response = await client.get(
        f"/api/v1/ledgers/{ledger['id']}/audit",
        params={"object_type": "member", "object_id": member.id},
        headers=owner.headers,
    )
    entries = response.json()["items"]
    assert [(e["action"], e["user_id"]) for e in entries] == [
        ("delete", member.id),
        ("update", owner.id),
        ("create", owner.id),
    ]
    assert entries[1]["before"]["role"] == "viewer"
    assert entries[1]["after"]["role"] == "editor"
    assert entries[0]["after"] is None
