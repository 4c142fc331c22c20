"""Accounts of people and their tokens: registration, sign-in, revocation. No HTTP here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from finance.auth import passwords
from finance.auth.tokens import PERSONAL_PREFIX, SESSION_PREFIX, hash_token, new_token
from finance.config import Settings
from finance.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from finance.models import AuthToken, TokenKind, User
from finance.models.base import utcnow
from finance.sqlite import QUICK


def normalize_email(email: str) -> str:
    """One spelling per address: the validated form, lower-cased as mail providers treat it."""
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise Unprocessable(f"Not a valid email address: {exc}") from exc


def check_password_rules(settings: Settings, password: str) -> None:
    if len(password) < settings.password_min_length:
        raise Unprocessable(
            f"The password must be at least {settings.password_min_length} characters long"
        )


async def create_user(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    display_name: str,
    is_admin: bool = False,
    first_becomes_admin: bool = False,
) -> User:
    email = normalize_email(email)
    check_password_rules(settings, password)
    # Hashed before the first query: on SQLite that query takes the write lock, and the hash is
    # the slow part.
    password_hash = await passwords.hash_password(settings, password)
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("A user with this email already exists")
    user = User(
        email=email,
        display_name=display_name,
        password_hash=password_hash,
        is_admin=is_admin or (first_becomes_admin and await _is_first_user(session)),
    )
    session.add(user)
    await session.flush()
    return user


async def register(
    session: AsyncSession, settings: Settings, *, email: str, password: str, display_name: str
) -> User:
    """Self-service sign-up, when the server allows it; the very first user administers it."""
    if not settings.registration_open:
        raise Forbidden("Registration is closed on this server; ask an administrator")
    return await create_user(
        session,
        settings,
        email=email,
        password=password,
        display_name=display_name,
        first_becomes_admin=True,
    )


async def _is_first_user(session: AsyncSession) -> bool:
    if await count_users(session) > 0:
        return False
    if session.get_bind().dialect.name == "postgresql":
        # Two first sign-ups at once must not both become administrators: wait for the other
        # one's transaction, then count again (READ COMMITTED sees its row by then). SQLite
        # needs nothing: its writers are serialized by BEGIN IMMEDIATE.
        await session.execute(text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
        return await count_users(session) == 0
    return True


async def authenticate(
    session: AsyncSession, settings: Settings, email: str, password: str
) -> User:
    """The user for these credentials; one message for every failure, and the same cost."""
    failure = Unauthorized("Incorrect email or password")
    try:
        normalized = normalize_email(email)
    except Unprocessable:
        await passwords.spend_a_verification(settings, password)
        raise failure from None
    user = await session.scalar(select(User).where(User.email == normalized))
    if user is None:
        await passwords.spend_a_verification(settings, password)
        raise failure
    if not await passwords.verify_password(settings, user.password_hash, password):
        raise failure
    if not user.is_active:
        raise failure
    if passwords.needs_rehash(settings, user.password_hash):
        user.password_hash = await passwords.hash_password(settings, password)
    return user


async def issue_session_token(
    session: AsyncSession, settings: Settings, user: User
) -> tuple[str, AuthToken]:
    token = new_token(SESSION_PREFIX)
    row = AuthToken(
        user_id=user.id,
        kind=TokenKind.SESSION,
        token_hash=hash_token(settings.secret, token),
        expires_at=utcnow() + timedelta(minutes=settings.access_token_minutes),
    )
    session.add(row)
    await session.flush()
    return token, row


# Built once: the lookup runs on every request. `ledgers.deps` extends it with the membership.
TOKEN_LOOKUP = (
    select(AuthToken, User)
    .join(User, User.id == AuthToken.user_id)
    .where(AuthToken.token_hash == bindparam("token_hash"))
    .execution_options(**{QUICK: True})
)


def token_lookup_parameters(settings: Settings, secret: str) -> dict[str, str]:
    """The parameters of `TOKEN_LOOKUP` for a bearer secret (only its hash is stored)."""
    return {"token_hash": hash_token(settings.secret, secret)}


def check_live(found: tuple[AuthToken, User] | None) -> tuple[AuthToken, User]:
    """The token and user `TOKEN_LOOKUP` found, if the token may still be used; else 401."""
    if found is None:
        raise Unauthorized("The token is not valid")
    token, user = found
    if token.revoked_at is not None:
        raise Unauthorized("The token has been revoked")
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthorized("The token has expired")
    if not user.is_active:
        raise Unauthorized("This account is deactivated")
    return token, user


async def resolve_token(
    session: AsyncSession, settings: Settings, secret: str
) -> tuple[AuthToken, User]:
    """The live token behind a bearer secret and its active user: one indexed lookup."""
    row = (
        await session.execute(TOKEN_LOOKUP, token_lookup_parameters(settings, secret))
    ).one_or_none()
    return check_live(None if row is None else (row[0], row[1]))


# `last_used_at` is kept to this precision, so that a busy client costs one write a minute.
LAST_USED_PRECISION = timedelta(minutes=1)


def last_use_is_stale(token: AuthToken) -> bool:
    return token.last_used_at is None or token.last_used_at < utcnow() - LAST_USED_PRECISION


async def mark_used(sessions: async_sessionmaker[AsyncSession], token_id: uuid.UUID) -> None:
    """Record a token's use in a transaction of its own, after the request's has ended.

    Done apart so that read-only requests stay read-only and a write request's transaction is
    not lengthened; the condition makes concurrent requests of one client write once.
    """
    now = utcnow()
    async with sessions() as session, session.begin():
        await session.execute(
            update(AuthToken)
            .where(
                AuthToken.id == token_id,
                or_(
                    AuthToken.last_used_at.is_(None),
                    AuthToken.last_used_at < now - LAST_USED_PRECISION,
                ),
            )
            .values(last_used_at=now)
        )


async def revoke_token(session: AsyncSession, token: AuthToken) -> None:
    token.revoked_at = utcnow()
    await session.flush()


async def revoke_sessions(
    session: AsyncSession, user: User, *, keep: uuid.UUID | None = None
) -> None:
    """Revoke the user's sign-in sessions (not personal tokens), except `keep`."""
    statement = (
        update(AuthToken)
        .where(
            AuthToken.user_id == user.id,
            AuthToken.kind == TokenKind.SESSION,
            AuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    if keep is not None:
        statement = statement.where(AuthToken.id != keep)
    await session.execute(statement)


async def change_password(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    current_password: str | None,
    new_password: str,
    keep_session: uuid.UUID | None,
) -> None:
    if current_password is None or not await passwords.verify_password(
        settings, user.password_hash, current_password
    ):
        raise Unprocessable("The current password is needed to set a new one, and it is not right")
    check_password_rules(settings, new_password)
    user.password_hash = await passwords.hash_password(settings, new_password)
    await revoke_sessions(session, user, keep=keep_session)
    await session.flush()


async def create_personal_token(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    name: str,
    expires_at: datetime | None,
) -> tuple[str, AuthToken]:
    now = utcnow()
    latest = now + timedelta(days=settings.personal_token_max_days)
    if expires_at is None:
        expires_at = latest
    if expires_at.tzinfo is None:
        raise Unprocessable("expires_at needs a time zone, e.g. 2027-01-31T00:00:00Z")
    if expires_at <= now:
        raise Unprocessable("expires_at must be in the future")
    if expires_at > latest:
        raise Unprocessable(
            f"A personal token may live at most {settings.personal_token_max_days} days"
        )
    token = new_token(PERSONAL_PREFIX)
    row = AuthToken(
        user_id=user.id,
        kind=TokenKind.PERSONAL,
        name=name,
        token_hash=hash_token(settings.secret, token),
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return token, row


async def list_personal_tokens(session: AsyncSession, user: User) -> Sequence[AuthToken]:
    result = await session.scalars(
        select(AuthToken)
        .where(
            AuthToken.user_id == user.id,
            AuthToken.kind == TokenKind.PERSONAL,
            AuthToken.revoked_at.is_(None),
        )
        .order_by(AuthToken.created_at, AuthToken.id)
    )
    return result.all()


async def revoke_personal_token(session: AsyncSession, user: User, token_id: uuid.UUID) -> None:
    token = await session.scalar(
        select(AuthToken).where(
            AuthToken.id == token_id,
            AuthToken.user_id == user.id,
            AuthToken.kind == TokenKind.PERSONAL,
            AuthToken.revoked_at.is_(None),
        )
    )
    if token is None:
        raise NotFound("No such token")
    await revoke_token(session, token)


async def count_users(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(User)) or 0
