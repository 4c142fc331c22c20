"""One's own profile, and the directory that only administrators may read and change."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import PASSWORD, AuthedUser, UserFactory, assert_problem


async def test_me_reads_and_renames(client: httpx.AsyncClient, user: AuthedUser) -> None:
    me = await client.get("/api/v1/users/me", headers=user.headers)
    assert me.status_code == 200
    assert me.json()["id"] == user.id
    renamed = await client.patch(
        "/api/v1/users/me", json={"display_name": "  Ada L.  "}, headers=user.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["display_name"] == "Ada L."
    again = await client.get("/api/v1/users/me", headers=user.headers)
    assert again.json()["display_name"] == "Ada L."
    # Nothing else can be changed here, and a current password alone means nothing.
    assert_problem(
        await client.patch("/api/v1/users/me", json={"is_admin": True}, headers=user.headers), 422
    )
    assert_problem(
        await client.patch(
            "/api/v1/users/me", json={"current_password": PASSWORD}, headers=user.headers
        ),
        422,
    )
    assert_problem(await client.patch("/api/v1/users/me", json={"display_name": "x"}), 401)


async def test_the_directory_is_for_administrators(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin = await make_user()
    member = await make_user()
    refused = await client.get("/api/v1/users", headers=member.headers)
    assert "administrator" in assert_problem(refused, 403)["detail"]
    assert_problem(await client.get("/api/v1/users"), 401)
    listed = await client.get("/api/v1/users", headers=admin.headers)
    assert listed.status_code == 200
    assert [u["email"] for u in listed.json()] == [admin.email, member.email]
    assert "password" not in listed.text
    page = await client.get("/api/v1/users?limit=1&offset=1", headers=admin.headers)
    assert [u["email"] for u in page.json()] == [member.email]
    assert_problem(await client.get("/api/v1/users?limit=0", headers=admin.headers), 422)


async def test_deactivation_stops_every_token_at_once(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin = await make_user()
    member = await make_user()
    script = (
        await client.post("/api/v1/auth/tokens", json={"name": "s"}, headers=member.headers)
    ).json()["token"]
    script_headers = {"Authorization": f"Bearer {script}"}

    response = await client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    session = assert_problem(await client.get("/api/v1/users/me", headers=member.headers), 401)
    assert session["detail"] == "The token has been revoked"
    personal = assert_problem(await client.get("/api/v1/users/me", headers=script_headers), 401)
    assert personal["detail"] == "This account is deactivated"
    # Signing in again fails exactly as a wrong password does.
    login = await client.post(
        "/api/v1/auth/token", data={"username": member.email, "password": PASSWORD}
    )
    assert assert_problem(login, 401)["detail"] == "Incorrect email or password"

    await client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": True}, headers=admin.headers
    )
    # Reactivation revives the personal token, but not the sign-in session.
    assert (await client.get("/api/v1/users/me", headers=script_headers)).status_code == 200
    assert_problem(await client.get("/api/v1/users/me", headers=member.headers), 401)


async def test_administrators_promote_but_never_lock_themselves_out(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin = await make_user()
    member = await make_user()
    for change in ({"is_active": False}, {"is_admin": False}):
        refused = await client.patch(
            f"/api/v1/users/{admin.id}", json=change, headers=admin.headers
        )
        assert "yourself" in assert_problem(refused, 422)["detail"]
    me = await client.get("/api/v1/users/me", headers=admin.headers)
    assert me.json()["is_admin"] is True
    assert me.json()["is_active"] is True

    not_yet = await client.patch(
        f"/api/v1/users/{admin.id}", json={"is_active": False}, headers=member.headers
    )
    assert_problem(not_yet, 403)
    promoted = await client.patch(
        f"/api/v1/users/{member.id}", json={"is_admin": True}, headers=admin.headers
    )
    assert promoted.json()["is_admin"] is True
    assert (await client.get("/api/v1/users", headers=member.headers)).status_code == 200
    missing = await client.patch(
        f"/api/v1/users/{uuid.uuid4()}", json={"is_admin": True}, headers=admin.headers
    )
    assert_problem(missing, 404)
    assert_problem(
        await client.patch(
            f"/api/v1/users/{member.id}", json={"email": "x"}, headers=admin.headers
        ),
        422,
    )
