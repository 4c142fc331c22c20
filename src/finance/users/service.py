"""Profiles and their administration: the rules behind /api/v1/users. No HTTP here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from finance.auth import service as auth_service
from finance.config import Settings
from finance.errors import NotFound, Unprocessable
from finance.models import AuthToken, User


async def update_profile(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    current_token: AuthToken,
    display_name: str | None,
    current_password: str | None,
    new_password: str | None,
) -> User:
    """A new password needs the current one and signs out every other session."""
    if display_name is not None:
        user.display_name = display_name
    if new_password is not None:
        await auth_service.change_password(
            session,
            settings,
            user,
            current_password=current_password,
            new_password=new_password,
            keep_session=current_token.id,
        )
    elif current_password is not None:
        raise Unprocessable("current_password is only needed with new_password")
    await session.flush()
    return user


async def list_users(session: AsyncSession, *, limit: int, offset: int) -> Sequence[User]:
    result = await session.scalars(
        select(User).order_by(User.created_at, User.id).limit(limit).offset(offset)
    )
    return result.all()


async def administer(
    session: AsyncSession,
    admin: User,
    user_id: uuid.UUID,
    *,
    is_active: bool | None,
    is_admin: bool | None,
) -> User:
    """Deactivate, reactivate, promote or demote; never oneself out of administration.

    A deactivated user's tokens stop working at once (every request checks the account), and
    their sign-in sessions are revoked so that a reactivation does not revive them.
    """
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user")
    if user.id == admin.id and (is_active is False or is_admin is False):
        # This also keeps at least one active administrator on the server.
        raise Unprocessable("You cannot deactivate or demote yourself")
    if is_active is not None:
        if user.is_active and not is_active:
            await auth_service.revoke_sessions(session, user)
        user.is_active = is_active
    if is_admin is not None:
        user.is_admin = is_admin
    await session.flush()
    return user
