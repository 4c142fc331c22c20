"""/api/v1/users: your own profile, and the directory for administrators."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from finance.auth import service as auth_service
from finance.auth.deps import CurrentAdmin, CurrentToken, CurrentUser
from finance.auth.schemas import UserRead, UserUpdateAdmin, UserUpdateMe
from finance.config import SettingsDep
from finance.db import SessionDep
from finance.errors import NotFound, Unprocessable, responses
from finance.models import User

router = APIRouter(prefix="/users", tags=["users"])


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
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.new_password is not None:
        await auth_service.change_password(
            session,
            settings,
            user,
            current_password=body.current_password,
            new_password=body.new_password,
            keep_session=token.id,
        )
    elif body.current_password is not None:
        raise Unprocessable("current_password is only needed with new_password")
    await session.flush()
    return user


@router.get(
    "",
    response_model=list[UserRead],
    responses=responses(401, 403),
    summary="Every user of this server (administrators only)",
)
async def list_users(
    _admin: CurrentAdmin,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Sequence[User]:
    result = await session.scalars(
        select(User).order_by(User.created_at, User.id).limit(limit).offset(offset)
    )
    return result.all()


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses=responses(401, 403, 404, 422),
    summary="Deactivate, reactivate, promote or demote a user (administrators only)",
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdateAdmin, admin: CurrentAdmin, session: SessionDep
) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user")
    if user.id == admin.id and (body.is_active is False or body.is_admin is False):
        raise Unprocessable("You cannot deactivate or demote yourself")
    if body.is_active is not None:
        user.is_active = body.is_active
    if body.is_admin is not None:
        user.is_admin = body.is_admin
    await session.flush()
    return user
