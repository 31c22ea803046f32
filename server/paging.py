"""Opaque cursors for cursor-paged lists (never skip)."""

from __future__ import annotations

import base64
import json
from typing import Any

from bson import ObjectId

from server.errors import BadRequest


def encode_cursor(values: list[Any]) -> str:
    plain = [str(v) if isinstance(v, ObjectId) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise BadRequest("翻页参数无效", code="invalid_cursor") from None
    if not isinstance(values, list):
        raise BadRequest("翻页参数无效", code="invalid_cursor")
    return values


def object_id(value: Any) -> ObjectId:
    if isinstance(value, str) and ObjectId.is_valid(value):
        return ObjectId(value)
    raise BadRequest("翻页参数无效", code="invalid_cursor")
