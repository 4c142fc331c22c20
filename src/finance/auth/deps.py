"""Who is calling: the bearer token resolved to an active user, as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import select

from finance.auth.tokens import hash_token
from finance.db import SessionDep
from finance.errors import Forbidden, Unauthorized
from finance.models import AuthToken, User
from finance.models.base import utcnow

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_current_token(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> AuthToken:
    if not token:
        raise Unauthorized("Sign in first: send `Authorization: Bearer <token>`")
    now = utcnow()
    row = (
        await session.execute(
            select(AuthToken, User)
            .join(User, User.id == AuthToken.user_id)
            .where(AuthToken.token_hash == hash_token(token))
        )
    ).one_or_none()
    if row is None:
        raise Unauthorized("The token is not valid")
    auth_token, user = row
    if auth_token.revoked_at is not None:
        raise Unauthorized("The token has been revoked")
    if auth_token.expires_at is not None and auth_token.expires_at <= now:
        raise Unauthorized("The token has expired")
    if not user.is_active:
        raise Unauthorized("This account is deactivated")
    request.state.user = user
    return auth_token


CurrentToken = Annotated[AuthToken, Depends(get_current_token)]


async def get_current_user(request: Request, _token: CurrentToken) -> User:
    user: User = request.state.user
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Only an administrator may do this")
    return user


CurrentAdmin = Annotated[User, Depends(get_current_admin)]
