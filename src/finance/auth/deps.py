"""Who is calling: the bearer token resolved to an active user, as a FastAPI dependency."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.exc import SQLAlchemyError

from finance.auth import service
from finance.config import SettingsDep
from finance.db import SessionDep, get_database
from finance.errors import Forbidden, Unauthorized
from finance.models import AuthToken, User

logger = logging.getLogger("finance.auth")

# The Authorize button of /docs signs in through this form endpoint.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def bearer_secret(secret: Annotated[str | None, Depends(oauth2_scheme)]) -> str:
    if not secret:
        raise Unauthorized("Sign in first: send `Authorization: Bearer <token>`")
    return secret


BearerSecret = Annotated[str, Depends(bearer_secret)]


def signed_in(request: Request, background: BackgroundTasks, token: AuthToken, user: User) -> None:
    """What a request does once its bearer token is found live: note who is calling, and
    record the token's use (after the response, at most once a minute)."""
    if service.last_use_is_stale(token):
        background.add_task(_mark_used, request, token.id)
    request.state.user = user


async def get_current_token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    background: BackgroundTasks,
    secret: BearerSecret,
) -> AuthToken:
    """Looked up on every request, so revocation and deactivation take effect at once."""
    token, user = await service.resolve_token(session, settings, secret)
    signed_in(request, background, token, user)
    return token


async def _mark_used(request: Request, token_id: uuid.UUID) -> None:
    """Runs after the response; a failure to record the use must not fail anything else."""
    try:
        await service.mark_used(get_database(request).sessions, token_id)
    except SQLAlchemyError as exc:
        logger.warning("could not record the use of token %s: %s", token_id, exc)


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
