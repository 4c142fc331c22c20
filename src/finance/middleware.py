"""ASGI middleware: request ids and logs, body-size limits, and retries of transient conflicts."""

from __future__ import annotations

import logging
import random
import time
import uuid

import anyio
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from finance.db import is_retryable
from finance.errors import internal_error_response, problem_response

logger = logging.getLogger("finance.requests")


class RequestLogMiddleware:
    """Gives every request an id (kept from `X-Request-ID` when sane) and logs its outcome.

    It is also where an unexpected exception ends: logged with its trace and the request id,
    answered with a bare 500 problem that carries the id (outermost, so even that answer
    has it).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        response_started = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "unexpected error on %s %s id=%s", scope["method"], scope["path"], request_id
            )
            if response_started:
                raise
            await internal_error_response(scope["path"])(scope, receive, send_with_id)
        finally:
            logger.info(
                "%s %s %s %.1fms id=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413, by `Content-Length` or while streaming.

    Multipart uploads (statement imports) have their own, larger limit.
    """

    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.max_upload if content_type.startswith("multipart/") else self.max_body
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            413,
            type_="payload-too-large",
            title="Payload too large",
            detail=f"The request body is larger than the limit of {limit} bytes",
            instance=scope["path"],
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class RetryMiddleware:
    """Runs a request again when the database reports a transient conflict.

    A serialization failure or deadlock (PostgreSQL), a busy lock (SQLite) or a pooled
    connection that turns out to be dead rolls the whole request back, so running it again
    from the start is safe; the body is buffered for that.
    The session commits before the response starts (see `db.get_db`), so a conflict always
    surfaces before anything was sent. After the last attempt the client gets a 503, as it
    does at once when no connection came free within the pool timeout (on SQLite, the writer's).
    """

    def __init__(self, app: ASGIApp, *, attempts: int = 5) -> None:
        self.app = app
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        for attempt in range(1, self.attempts + 1):
            started = False
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return await receive()

            async def tracking_send(message: Message) -> None:
                nonlocal started
                started = started or message["type"] == "http.response.start"
                await send(message)

            try:
                await self.app(scope, replay, tracking_send)
                return
            except PoolTimeout:
                if started:
                    raise
                break  # waited the whole pool timeout already: no point in waiting again
            except Exception as exc:
                if started or not is_retryable(exc):
                    raise
                logger.warning("transient database error, attempt %d: %s", attempt, exc)
                if attempt < self.attempts:
                    await anyio.sleep(random.uniform(0.005, 0.02) * 2**attempt)  # noqa: S311
        response = problem_response(
            503,
            type_="busy",
            title="Service busy",
            detail="The database was too busy to complete this request; try again.",
            instance=scope["path"],
            headers={"Retry-After": "1"},
        )
        await response(scope, receive, send)
