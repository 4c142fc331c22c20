"""Shared pydantic building blocks: strict request bodies and cursor-paginated pages."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from finance.errors import Unprocessable

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class StrictModel(BaseModel):
    """A request body: unknown or read-only fields (`id`, `ledger_id`...) are refused."""

    model_config = ConfigDict(extra="forbid")


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


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable("cursor is not valid; pass back next_cursor unchanged") from exc
    if not isinstance(key, list):
        raise Unprocessable("cursor is not valid; pass back next_cursor unchanged")
    return key


def page_params(
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, at most {MAX_PAGE_SIZE}"),
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]
