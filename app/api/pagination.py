"""Cursor pagination: ``?limit=`` (1-100, default 50) and ``?cursor=``; answers ``{"data", "next_cursor"}``.

A cursor is opaque to clients: urlsafe base64 (no padding) of a small JSON object holding the sort key of the
last item returned. The next page starts strictly after that key, so rows added or removed meanwhile never
shift a page (no duplicates, no gaps), unlike offsets. Every listing sorts by a total order (its last key
part is a unique id). A cursor that does not decode to the listing's key shape is a 422.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from app.api.errors import ApiError, validation_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_CURSOR_CHARS = 512

Key = tuple[str | int, ...]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


class PageQuery(BaseModel):
    """The query parameters of every listing (operations add their filters by subclassing)."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="How many items to return (1-100).")
    cursor: str | None = Field(
        None, max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the previous page; omit for the first."
    )


def encode_cursor(key: Key) -> str:
    raw = json.dumps({"k": list(key)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, shape: Sequence[type]) -> Key:
    """The key in ``cursor`` if it has ``shape`` (a type per part, e.g. ``(int, str)``); else a 422."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise _bad_cursor() from None
    key = data.get("k") if isinstance(data, dict) else None
    if not isinstance(key, list) or len(key) != len(shape):
        raise _bad_cursor()
    for part, kind in zip(key, shape, strict=True):
        # bool is an int in Python; a cursor never holds one.
        if not isinstance(part, kind) or isinstance(part, bool):
            raise _bad_cursor()
        # Keys are compared in SQL too, where integers are 64-bit.
        if isinstance(part, int) and not -(2**63) <= part < 2**63:
            raise _bad_cursor()
    return tuple(key)


def _bad_cursor() -> ApiError:
    return validation_error(
        [{"field": "cursor", "message": "Not a cursor from this listing; start again without one."}],
        "The cursor is not valid.",
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def paginate(items: Sequence[T], key: Callable[[T], Key], shape: Sequence[type], query: PageQuery) -> Page[T]:
    """One page of an in-memory listing (lists the page services already return whole), ordered by ``key``."""
    ordered = sorted(items, key=key)
    if query.cursor is not None:
        after = decode_cursor(query.cursor, shape)
        ordered = [item for item in ordered if key(item) > after]
    chunk = ordered[: query.limit]
    more = len(ordered) > query.limit
    return Page(chunk, encode_cursor(key(chunk[-1])) if more and chunk else None)


def newest_first(moment: datetime) -> int:
    """A sort key part that orders timestamps newest first (microseconds before the epoch, negated)."""
    return -((moment - _EPOCH) // timedelta(microseconds=1))


def envelope(model: type[BaseModel], page: Page[Any], convert: Callable[[Any], Any]) -> BaseModel:
    return model(data=[convert(item) for item in page.items], next_cursor=page.next_cursor)
