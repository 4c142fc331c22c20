"""/api/v1/auth: registration, sign-in (OAuth2 password form), sign-out, personal tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from finance.auth import service
from finance.auth.deps import CurrentToken, CurrentUser
from finance.auth.ratelimit import LoginLimiter
from finance.auth.schemas import (
    AccessToken,
    PersonalTokenCreate,
    PersonalTokenCreated,
    PersonalTokenRead,
    RegisterRequest,
    UserRead,
)
from finance.config import SettingsDep
from finance.db import SessionDep
from finance.errors import Unauthorized, Unprocessable, responses
from finance.idempotency import IdempotentRoute
from finance.models import AuthToken

router = APIRouter(prefix="/auth", tags=["auth"], route_class=IdempotentRoute)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=responses(403, 409, 422),
    summary="Create an account (when registration is open)",
)
async def register(body: RegisterRequest, session: SessionDep, settings: SettingsDep) -> UserRead:
    user = await service.register(
        session,
        settings,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
    )
    return UserRead.model_validate(user)


@router.post(
    "/token",
    response_model=AccessToken,
    responses=responses(401, 422, 429),
    summary="Sign in with the OAuth2 password form (username = email)",
)
async def token(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> AccessToken:
    # RFC 6749 5.1: a token response must not be cached.
    response.headers["Cache-Control"] = "no-store"
    limiter: LoginLimiter = request.app.state.login_limiter
    email = form.username.strip().lower()
    if not email or len(email) > 320:
        raise Unprocessable("username must be the account's email")
    client = request.client.host if request.client else "unknown"
    await limiter.check(email, client)
    try:
        user = await service.authenticate(session, settings, form.username, form.password)
    except Unauthorized:
        await limiter.failed(email)
        raise
    secret, _ = await service.issue_session_token(session, settings, user)
    return AccessToken(access_token=secret, expires_in=settings.access_token_minutes * 60)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401),
    summary="Revoke the token used for this request",
)
async def logout(current: CurrentToken, session: SessionDep) -> Response:
    await service.revoke_token(session, current)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=PersonalTokenCreated,
    responses=responses(401, 422),
    summary="Create a personal access token for scripts; its secret is shown only here",
)
async def create_token(
    body: PersonalTokenCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> PersonalTokenCreated:
    secret, row = await service.create_personal_token(
        session, settings, user, name=body.name, expires_at=body.expires_at
    )
    return PersonalTokenCreated(token=secret, **_token_fields(row))


@router.get(
    "/tokens",
    response_model=list[PersonalTokenRead],
    responses=responses(401),
    summary="List your personal access tokens (never their secrets)",
)
async def list_tokens(user: CurrentUser, session: SessionDep) -> Sequence[AuthToken]:
    return await service.list_personal_tokens(session, user)


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 404),
    summary="Revoke a personal access token",
)
async def delete_token(token_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    await service.revoke_personal_token(session, user, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _token_fields(row: AuthToken) -> dict[str, object]:
    return PersonalTokenRead.model_validate(row).model_dump()
