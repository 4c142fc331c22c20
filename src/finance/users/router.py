"""/api/v1/users: your own profile, and the directory for administrators."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query

from finance.auth.deps import CurrentAdmin, CurrentToken, CurrentUser
from finance.auth.schemas import UserRead, UserUpdateAdmin, UserUpdateMe
from finance.config import SettingsDep
from finance.db import SessionDep
from finance.errors import responses
from finance.idempotency import IdempotentRoute
from finance.models import User
from finance.users import service

router = APIRouter(prefix="/users", tags=["users"], route_class=IdempotentRoute)


@router.get("/me", response_model=UserRead, responses=responses(401), summary="Who you are")
async def read_me(user: CurrentUser) -> User:
    return user


@router.patch(
    "/me",
    response_model=UserRead,
    responses=responses(401, 422),
    summary="Change your display name or password (a new password signs out other sessions)",
)
async def update_me(
    body: UserUpdateMe,
    user: CurrentUser,
    token: CurrentToken,
    session: SessionDep,
    settings: SettingsDep,
) -> User:
    return await service.update_profile(
        session,
        settings,
        user,
        current_token=token,
        display_name=body.display_name,
        current_password=body.current_password,
        new_password=body.new_password,
    )


@router.get(
    "",
    response_model=list[UserRead],
    responses=responses(401, 403, 422),
    summary="Every user of this server (administrators only)",
)
async def list_users(
    _admin: CurrentAdmin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Sequence[User]:
    return await service.list_users(session, limit=limit, offset=offset)


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses=responses(401, 403, 404, 422),
    summary="Deactivate, reactivate, promote or demote a user (administrators only)",
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdateAdmin, admin: CurrentAdmin, session: SessionDep
) -> User:
    return await service.administer(
        session, admin, user_id, is_active=body.is_active, is_admin=body.is_admin
    )
