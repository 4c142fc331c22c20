"""`Idempotency-Key` on POST: a retry replays the first response and creates nothing twice.

The protocol, per user and key:

1. The key is claimed (a row in state `started`) in a short transaction of its own, before the
   request's work begins, so that a concurrent retry sees it and gets 409 instead of doing the
   work a second time.
2. The work runs in the request's session. A 2xx response is written into the claimed row by
   that same session, so it commits in the same transaction as the work: a stored response
   always means a durable write, and a rolled-back write leaves no stored response.
3. Anything else (an error, a non-2xx answer, a failed commit) deletes the claim, so the client
   may retry with the same key.

A claim left behind by a crashed worker is taken over once it is `STALE_CLAIM` old. Keys are
kept at least `KEPT_AT_LEAST` and purged, a batch at a time, once they are `PURGED_AFTER` old.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from types import TracebackType
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from finance.auth.service import resolve_token
from finance.config import get_settings
from finance.db import Database, get_database
from finance.errors import Conflict, Unauthorized, Unprocessable, responses
from finance.models import IdempotencyKey
from finance.models.base import utcnow

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
STALE_CLAIM = timedelta(minutes=5)
KEPT_AT_LEAST = timedelta(hours=24)
PURGED_AFTER = 2 * KEPT_AT_LEAST
PURGE_BATCH = 100
STARTED, DONE = "started", "done"
# Recomputed by the replayed response itself.
_UNSTORED_HEADERS = frozenset({"content-length"})

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    "description": "Any unique string (a random UUID). A retry with the same key and body "
    f"replays the first response with `{REPLAYED_HEADER}: true` and creates nothing; the same "
    "key with another body gets 422; a retry while the first is in progress gets 409. Keys "
    "are per user and kept at least 24 hours.",
}


class IdempotentRoute(APIRoute):
    """The route class of every API router: honours `Idempotency-Key` on POST requests.

    Requests without the header, other methods, and callers without a valid bearer token
    (the handler answers those with 401 itself) run unchanged.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if "POST" in (self.methods or ()):
            self.openapi_extra = {
                **(self.openapi_extra or {}),
                "parameters": [*(self.openapi_extra or {}).get("parameters", []), _PARAMETER],
            }
            for status, problem in responses(409, 422).items():
                self.responses.setdefault(status, problem)

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def idempotent_handler(request: Request) -> Response:
            key = request.headers.get(HEADER)
            if request.method != "POST" or key is None:
                return await handler(request)
            database = get_database(request)
            user_id = await _caller(database, request)
            if user_id is None:
                return await handler(request)
            check_key(key)
            digest = fingerprint(
                request.method, request.url.path, request.url.query, await request.body()
            )
            replay = await _claim(database, user_id, key, digest)
            if replay is not None:
                return replay
            claim = _Claim(database, user_id, key)
            # Pushed before the handler opens its session, so this exits after the session's
            # commit or rollback (and, on SQLite, after it has released the write lock).
            request.scope["fastapi_function_astack"].push_async_exit(claim.release_unless_done)
            request.state.db_session = None  # a previous attempt's (see RetryMiddleware)
            response = await handler(request)
            body = getattr(response, "body", None)  # a streamed response is not stored
            if 200 <= response.status_code < 300 and isinstance(body, bytes):
                session: AsyncSession | None = request.state.db_session
                if session is None:
                    raise RuntimeError("An idempotent route must use the request's session")
                await _store(session, user_id, key, response, body)
                claim.done = True
            return response

        return idempotent_handler


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise Unprocessable(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
            "(a random UUID is a good key)"
        )


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests "the same" for a key: method, path, query and exact body."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(part + b"\n")
    digest.update(body)
    return digest.hexdigest()


async def _caller(database: Database, request: Request) -> uuid.UUID | None:
    scheme, secret = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() != "bearer" or not secret:
        return None
    async with database.read_sessions() as session:
        try:
            token, _user = await resolve_token(session, await get_settings(request), secret)
        except Unauthorized:
            return None
    return token.user_id


async def _claim(database: Database, user_id: uuid.UUID, key: str, digest: str) -> Response | None:
    """Claim the key (None: go ahead), or the stored response to replay, or raise 409/422.

    The lookup runs in a read session first: on SQLite a write would wait for the request
    that holds the key (and the write lock), where a read answers at once.
    """
    async with database.read_sessions() as session:
        row = await session.get(IdempotencyKey, (user_id, key))
    if row is None:
        async with database.sessions.begin() as session:
            await _purge(session)
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            result = await session.execute(
                insert(IdempotencyKey)
                .values(user_id=user_id, key=key, request_hash=digest, state=STARTED)
                .on_conflict_do_nothing(index_elements=["user_id", "key"])
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return None
            row = await session.get(IdempotencyKey, (user_id, key))
            assert row is not None  # claimed by a concurrent request an instant ago
    return await _existing(database, row, digest)


async def _existing(database: Database, row: IdempotencyKey, digest: str) -> Response | None:
    if row.request_hash != digest:
        raise Unprocessable(
            f"This {HEADER} was already used with a different request; use a new key"
        )
    if row.state == DONE:
        return Response(
            content=row.response_body or b"",
            status_code=row.response_status or 200,
            headers={**(row.response_headers or {}), REPLAYED_HEADER: "true"},
        )
    now = utcnow()
    if row.locked_at > now - STALE_CLAIM:
        raise Conflict(
            f"A request with this {HEADER} is still being processed; retry in a moment",
            headers={"Retry-After": "1"},
        )
    # The claimant died without releasing it: take over, unless another retry just did.
    async with database.sessions.begin() as session:
        result = await session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.user_id == row.user_id,
                IdempotencyKey.key == row.key,
                IdempotencyKey.state == STARTED,
                IdempotencyKey.locked_at == row.locked_at,
            )
            .values(locked_at=now)
        )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"A request with this {HEADER} is still being processed; retry in a moment",
            headers={"Retry-After": "1"},
        )
    return None


async def _purge(session: AsyncSession) -> None:
    """Forget a batch of keys past retention; cheap (an index range) when there are none.

    On PostgreSQL rows another transaction holds are skipped, so concurrent purges never wait
    on, or deadlock with, each other.
    """
    expired = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.created_at < utcnow() - PURGED_AFTER)
        .limit(PURGE_BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        expired = expired.with_for_update(skip_locked=True)
    await session.execute(
        delete(IdempotencyKey).where(
            tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(expired)
        )
    )


async def _store(
    session: AsyncSession, user_id: uuid.UUID, key: str, response: Response, body: bytes
) -> None:
    headers = {
        name: value for name, value in response.headers.items() if name not in _UNSTORED_HEADERS
    }
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(
            state=DONE,
            response_status=response.status_code,
            response_body=body,
            response_headers=headers,
        )
    )


class _Claim:
    def __init__(self, database: Database, user_id: uuid.UUID, key: str) -> None:
        self.database = database
        self.user_id = user_id
        self.key = key
        self.done = False

    async def release_unless_done(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        """Delete the claim unless the response was stored and committed; never suppresses."""
        if self.done and exc is None:
            return False
        async with self.database.sessions.begin() as session:
            await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.user_id == self.user_id,
                    IdempotencyKey.key == self.key,
                    IdempotencyKey.state == STARTED,
                )
            )
        return False
