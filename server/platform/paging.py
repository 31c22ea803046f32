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


# ---- newest first, in time windows

#: How far back each read of ``newest_first`` reaches from where the page starts: one hour,
#: then eight times further each time, then everything older. A busy court's first page
#: comes from the first window or two; a quiet one costs a few empty index seeks.
WINDOWS: tuple[dt.timedelta | None, ...] = (
    *(dt.timedelta(hours=8**k) for k in range(6)),  # 1 h ... 32768 h (3.7 years)
    None,
)
WHOLE: tuple[dt.timedelta | None, ...] = (None,)


async def newest_first(
    col: Any,
    scope: dict[str, Any],
    projection: dict[str, Any],
    limit: int,
    *,
    now: dt.datetime,
    field: str = "_id",
    after: dict[str, Any] | None = None,
    windows: tuple[dt.timedelta | None, ...] = WINDOWS,
    hint: str | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` documents of ``scope``, newest ``field`` (a date, or ``_id`` whose
    ObjectIds carry their creation time) first, ``_id`` breaking ties, after ``after``: the
    last document of the previous page (its ``field`` and ``_id``).

    Read as a few bounded ranges rather than one sort over the whole scope: the ties of the
    cursor position, then one window after another back in time (``windows``) until the page
    is full. Each read is an equality prefix plus one range on ``field``, which an index on
    (scope..., field, _id) serves as a range; SecantusDB materialises every match of a query
    before its sort and limit, so a court's first page read in one query costs the whole
    court (110 s at 1M cases), in windows only the newest hours. ``scope`` must itself be
    equalities an index serves, or each window is a collection scan: pass ``WHOLE`` then.
    """
    by_id = field == "_id"
    order = [("_id", -1)] if by_id else [(field, -1), ("_id", -1)]

    def bound(at: dt.datetime) -> Any:
        return ObjectId.from_datetime(at) if by_id else at

    async def read(where: dict[str, Any], room: int) -> list[dict[str, Any]]:
        cursor = col.find({**scope, **where}, projection).sort(order)
        if hint:
            cursor = cursor.hint(hint)
        found: list[dict[str, Any]] = await cursor.limit(room).to_list()
        return found

    rows: list[dict[str, Any]] = []
    below: dict[str, Any] = {}  # the upper bound of the next window
    edge = now
    if after is not None:
        if not by_id:
            rows += await read({field: after[field], "_id": {"$lt": after["_id"]}}, limit)
        below = {"$lt": after[field]}
        edge = after["_id"].generation_time if by_id else after[field]
    for reach in windows:
        if len(rows) >= limit:
            break
        # Lower bounds are exclusive and the next window takes the bound itself ($lte):
        # SecantusDB 0.7 bounds a range on a key that more keys follow by the bare key, so
        # $gte on a descending key (as $lte on an ascending one) misses the documents equal
        # to the bound (tests/test_paging.py walks every edge).
        bounds = dict(below)
        if reach is not None:
            bounds["$gt"] = bound(edge - reach)
            below = {"$lte": bound(edge - reach)}
        rows += await read({field: bounds} if bounds else {}, limit - len(rows))
    return rows
