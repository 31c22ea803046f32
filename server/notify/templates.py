"""Filling subscribe-message templates: each keyword's value taken from the notice and cut to
WeChat's published limits, so that a long title never turns a push into a 47003 error."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from server.platform.clock import SHANGHAI
from server.platform.config import PushTemplate

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_NON_CJK = re.compile(r"[^\u3400-\u9fff]")
_CJK = re.compile(r"[\u3400-\u9fff]")
_STRICT: dict[str, re.Pattern[str]] = {
    "number": re.compile(r"[-+]?\d{1,32}(\.\d+)?"),
    "letter": re.compile(r"[A-Za-z]{1,32}"),
    "symbol": re.compile(r"[^\w\s\u3400-\u9fff]{1,5}"),
    "amount": re.compile(r"[¥￥$]?\d{1,10}(\.\d{1,2})?元?"),
    "phone_number": re.compile(r"[\d+\-() ]{1,17}"),
    # WeChat: at most 32 letters, digits and symbols. A value with Chinese in it (a 案号 such
    # as （2026）京0105民初1号) is refused, not stripped to what fits: a case number with its
    # characters gone names another case. Map such values to a thing keyword instead.
    "character_string": re.compile(r"[\x21-\x7e]{1,32}"),
}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean(value: Any) -> str:
    return _CONTROL.sub(" ", str(value)).strip()


def _as_time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            return _as_time(dt.datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _time(value: Any) -> str:
    when = _as_time(value)
    return when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if when else _cut(_clean(value), 64)


def _date(value: Any) -> str:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    when = _as_time(value)
    return when.astimezone(SHANGHAI).strftime("%Y-%m-%d") if when else _cut(_clean(value), 64)


def _name(value: Any) -> str:
    text = _clean(value)
    return _cut(text, 10 if _CJK.search(text) else 20)


_FORMATTERS: dict[str, Callable[[Any], str]] = {
    "thing": lambda v: _cut(_clean(v), 20),
    "time": _time,
    "date": _date,
    "phrase": lambda v: _NON_CJK.sub("", str(v))[:5],
    "character_string": _clean,
    "name": _name,
    "car_number": lambda v: _clean(v)[:8],
}


def keyword_value(keyword: str, value: Any) -> str:
    """The value for a keyword (``thing1``, ``time2`` …); ValueError if nothing valid is left."""
    kind = keyword.rstrip("0123456789")
    formatter = _FORMATTERS.get(kind)
    text = formatter(value) if formatter else _clean(value)
    pattern = _STRICT.get(kind)
    if not text or (pattern is not None and not pattern.fullmatch(text)):
        raise ValueError(f"{keyword}: {kind} value {str(value)[:40]!r} cannot be sent")
    return text


def render(
    name: str,
    template: PushTemplate,
    title: str,
    body: str,
    created_at: dt.datetime,
    data: dict[str, Any],
) -> dict[str, dict[str, str]]:
    """The ``data`` of a subscribe message; ValueError names a missing or unusable source."""
    sources: dict[str, Any] = {"title": title, "body": body, "created_at": created_at}
    out: dict[str, dict[str, str]] = {}
    for keyword, source in template.fields.items():
        if source.startswith("data."):
            key = source[5:]
            if data.get(key) in (None, ""):
                raise ValueError(f"template {name} needs data[{key!r}] for {keyword}")
            value = data[key]
        else:
            value = sources[source]
        out[keyword] = {"value": keyword_value(keyword, value)}
    return out
