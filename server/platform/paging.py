"""Opaque cursors for cursor-paged lists (never skip)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from bson import ObjectId

from server.platform.errors import InvalidCursor


def encode_cursor(values: list[Any]) -> str:
    plain = [str(v) if isinstance(v, ObjectId) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *fields: Callable[[Any], Any]) -> list[Any]:
    """The values of a cursor, each converted by its field (``object_id``, ``as_bool`` ...).

    Given fields, the cursor must hold exactly that many values, and any that fails its
    conversion makes the whole cursor a 400: a tampered cursor is bad input, never a 500.
    """
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, RecursionError):
        raise InvalidCursor() from None
    if not isinstance(values, list) or (fields and len(values) != len(fields)):
        raise InvalidCursor()
    if not fields:
        return values
    try:
        return [convert(value) for convert, value in zip(fields, values, strict=True)]
    except (ValueError, TypeError, OverflowError):
        raise InvalidCursor() from None


def object_id(value: Any) -> ObjectId:
    if isinstance(value, str) and ObjectId.is_valid(value):
        return ObjectId(value)
    raise InvalidCursor()


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise InvalidCursor()


def as_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise InvalidCursor()
    when = dt.datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise InvalidCursor()
    return when.astimezone(dt.UTC)  # OverflowError at the calendar's edges: a bad cursor
