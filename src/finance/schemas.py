"""Shared pydantic building blocks: strict request bodies, cursor-paginated pages, and
answers built as plain data (`Prebuilt`)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

import pydantic_core
from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator

from finance.errors import Unprocessable

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# What keyset keys are made of: text (dates, times, ids) and 32-bit integers (positions).
_CURSOR_INT = range(-(2**31), 2**31)
_CURSOR_TEXT = 100


class Prebuilt(Response):
    """JSON of plain data that the service built in the shape of the route's response model.

    FastAPI validates and serializes what an endpoint returns unless it is a `Response`: the
    read paths build their representations themselves (tests hold them to the models), so
    they skip that second pass; the route's `response_model` still documents them.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


def created_location(request: Request, object_id: uuid.UUID) -> str:
    """A 201's `Location`: the path the object was POSTed to, plus its id (what
    `request.url_for` builds, without matching the name against every route)."""
    return f"{request.scope['path'].rstrip('/')}/{object_id}"


NUL_MESSAGE = "text must not contain NUL characters (U+0000)"


def contains_nul(value: Any) -> bool:
    """Whether a string, or any key or item of a container, holds U+0000.

    PostgreSQL text cannot store it (SQLite can): refused on the way in, so that both
    databases answer the same 422 instead of one failing deep in the driver.
    """
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains_nul(item) for item in value)
    return False


class StrictModel(BaseModel):
    """A request body: unknown or read-only fields (`id`, `ledger_id`...) are refused, and so is
    a NUL character in any text, however deeply nested (see `contains_nul`)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value


async def refuse_nul(request: Request) -> None:
    """The rest of the request's text, as `StrictModel` does for bodies: path and query
    parameters, and the fields of a form the route reads (file contents are left alone)."""
    places: list[tuple[str, Any]] = [
        ("path", request.path_params.items()),
        ("query", request.query_params.multi_items()),
    ]
    route = request.scope.get("route")
    if (
        isinstance(route, APIRoute)
        and route.body_field is not None
        and isinstance(route.body_field.field_info, Form)
    ):
        # Parsed by FastAPI before any dependency runs; this reads its cached result.
        form = await request.form()
        places.append(("body", [(k, v) for k, v in form.multi_items() if isinstance(v, str)]))
    for where, items in places:
        for name, value in items:
            if contains_nul(name) or contains_nul(value):
                raise RequestValidationError(
                    [{"type": "string_nul", "loc": (where, name), "msg": NUL_MESSAGE}]
                )


class Page(BaseModel, Generic[T]):
    """One page of a keyset-paginated listing; pass `next_cursor` back as `cursor`."""

    items: list[T]
    next_cursor: str | None = Field(description="Opaque; absent on the last page")


class PageParams(BaseModel):
    limit: int
    cursor: list[Any] | None

    def next_cursor(self, last_key: list[Any] | None) -> str | None:
        return encode_cursor(last_key) if last_key is not None else None


def encode_cursor(key: list[Any]) -> str:
    """The sort key of the last item, as opaque URL-safe text."""
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid_cursor() -> Unprocessable:
    return Unprocessable("cursor is not valid; pass back next_cursor unchanged")


def _cursor_value(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= _CURSOR_TEXT
    return isinstance(value, int) and not isinstance(value, bool) and value in _CURSOR_INT


def decode_cursor(cursor: str) -> list[Any]:
    """The key of a cursor: a non-empty list of short strings and 32-bit integers, else 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(key, list) or not key or not all(_cursor_value(value) for value in key):
        raise _invalid_cursor()
    return key


def cursor_key(cursor: list[Any], *parsers: Callable[[Any], Any]) -> list[Any]:
    """The cursor's values, each through its parser (`cursor_date`...); 422 when they do not
    fit, as with a cursor written by hand or kept from another listing."""
    if len(cursor) != len(parsers):
        raise _invalid_cursor()
    try:
        return [parse(value) for parse, value in zip(parsers, cursor, strict=True)]
    except (TypeError, ValueError, OverflowError) as exc:
        raise _invalid_cursor() from exc


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def cursor_date(value: Any) -> dt.date:
    return dt.date.fromisoformat(_text(value))


def cursor_uuid(value: Any) -> uuid.UUID:
    return uuid.UUID(_text(value))


def cursor_int(value: Any) -> int:
    if not isinstance(value, int):
        raise TypeError(value)
    return value


def cursor_utc(value: Any) -> dt.datetime:
    """An aware time, in UTC (an offset that takes it out of the calendar is refused)."""
    at = dt.datetime.fromisoformat(_text(value))
    if at.tzinfo is None:
        raise ValueError(value)
    return at.astimezone(dt.UTC)


async def page_params(  # async: FastAPI would run a plain function on a worker thread
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, at most {MAX_PAGE_SIZE}"),
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]
