"""One error hierarchy, rendered as RFC 9457 problem+json for every failure the API can answer."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("finance.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:finance:problem:"


class AppError(Exception):
    """An error a client can act on; subclasses fix the status and the problem type."""

    status: int = 400
    type: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


class Unauthorized(AppError):
    status, type, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "Missing, invalid or expired credentials", **extra: Any):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(AppError):
    status, type, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, type, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, type, title = 409, "conflict", "Conflict"


class PreconditionFailed(AppError):
    status, type, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(AppError):
    status, type, title = 413, "payload-too-large", "Payload too large"


class Unprocessable(AppError):
    """Well-formed input that breaks a rule (an unbalanced transaction, too many decimals...)."""

    status, type, title = 422, "unprocessable", "Unprocessable input"


class PreconditionRequired(AppError):
    status, type, title = 428, "precondition-required", "Precondition required"


class TooManyRequests(AppError):
    status, type, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, **extra)


class ServiceUnavailable(AppError):
    status, type, title = 503, "service-unavailable", "Service unavailable"


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_response(
    status: int,
    *,
    type_: str,
    title: str,
    detail: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_PREFIX + type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update({key: value for key, value in extra.items() if value is not None})
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the problems an endpoint can answer."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {}},
        }
        for status in statuses
    }


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Keep where and what; drop the echoed input (it may be huge or hold a password)."""
    cleaned = []
    for error in errors:
        message = str(error.get("msg", "invalid"))
        # Errors raised inside our own validators come as "Value error, <our message>".
        message = message.removeprefix("Value error, ")
        cleaned.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": message,
                "type": error.get("type"),
            }
        )
    return cleaned


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(
        exc.status,
        type_=exc.type,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc.errors())
    first = errors[0] if errors else None
    detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first else "The request is not valid"
    return problem_response(
        422,
        type_="validation",
        title="Invalid request",
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    slug = phrase.lower().replace(" ", "-").replace("'", "")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    return problem_response(
        exc.status_code,
        type_=slug,
        title=phrase,
        detail=detail,
        instance=request.url.path,
        headers=exc.headers,
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntegrityError)
    # The driver's message names the constraint; the statement and its values stay out of logs.
    logger.info("integrity error on %s: %s", request.url.path, exc.orig)
    return problem_response(
        409,
        type_="conflict",
        title="Conflict",
        detail="This change conflicts with data that already exists (a duplicate or a reference "
        "that is still in use).",
        instance=request.url.path,
    )


def internal_error_response(instance: str) -> JSONResponse:
    """What a client sees of a bug: no trace, no SQL; the request id leads to the log."""
    return problem_response(
        500,
        type_="internal",
        title="Internal server error",
        detail="Something went wrong on our side; it has been logged with this request's id "
        "(the X-Request-ID header).",
        instance=instance,
    )


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what every error really is: a `Problem` as problem+json.

    FastAPI files an error's model under application/json and adds its own 422 model
    (`HTTPValidationError`) to every route with parameters; neither is what is sent. A body
    FastAPI cannot decode is answered 400 by any route that takes one.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("Problem", Problem.model_json_schema())
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                answers = operation.setdefault("responses", {})
                if "requestBody" in operation:  # a body that is not text in its encoding
                    answers.setdefault("400", {"description": HTTPStatus(400).phrase})
                for status, answer in answers.items():
                    if status[0] in "45":
                        answer["content"] = dict(problem)
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    # Unexpected exceptions are answered by `middleware.RequestLogMiddleware`, which logs them
    # with the request id and sends that id along.
