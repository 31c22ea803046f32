"""Validation rules WeChat applies to subscribe-message bodies and content checks.

Kept apart from the emulator state so the rules can be read (and tightened) on their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


class WeChatError(Exception):
    """A WeChat API error: answered as ``{"errcode", "errmsg"}``.

    ``http_status`` is used only by the emulator's control paths; WeChat's own paths answer
    HTTP 200 with the errcode, as the real platform does.
    """

    def __init__(self, errcode: int, errmsg: str, http_status: int = 400) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status


MINIPROGRAM_STATES = frozenset({"developer", "trial", "formal"})
LANGS = frozenset({"zh_CN", "en_US", "zh_HK", "zh_TW"})

# Text limits of msgSecCheck: v2 counts characters, v1 counted bytes.
SEC_CHECK_V2_MAX_CHARS = 2500
SEC_CHECK_V1_MAX_BYTES = 500 * 1024
PASS_LABEL = 100
RISKY_LABEL = 20006  # 违法犯罪
REVIEW_LABEL = 21000  # 其他
# WeChat's documented msgSecCheck test strings are always flagged, as on the real platform.
DEFAULT_RISKY_WORDS = (
    "特3456书yuuo莞6543李zxcz蒜7782法fgnv级",
    "完2347全dfji试3726测asad感3847知qwez到",
)

_CJK = re.compile(r"[\u3400-\u9fff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PATTERNS: dict[str, re.Pattern[str]] = {
    "number": re.compile(r"[-+]?\d{1,32}(\.\d+)?"),
    "letter": re.compile(r"[A-Za-z]{1,32}"),
    "symbol": re.compile(r"[^\w\s\u3400-\u9fff]{1,5}"),
    "character_string": re.compile(r"[\x21-\x7e]{1,32}"),
    "phrase": re.compile(r"[\u3400-\u9fff]{1,5}"),
    "amount": re.compile(r"[¥￥$]?\d{1,10}(\.\d{1,2})?元?"),
    "phone_number": re.compile(r"[\d+\-() ]{1,17}"),
}


def _name_ok(value: str) -> bool:
    # 10 characters when any Chinese is present, else 20 letters or symbols.
    return len(value) <= (10 if _CJK.search(value) else 20)


_LENGTH_RULES: dict[str, Callable[[str], bool]] = {
    "thing": lambda v: len(v) <= 20,
    "car_number": lambda v: len(v) <= 8,
    "name": _name_ok,
    "time": lambda v: len(v) <= 64,
    "date": lambda v: len(v) <= 64,
}


def keyword_kind(key: str) -> str:
    """The template keyword's type: ``thing1`` -> ``thing``, ``number01`` -> ``number``."""
    return key.rstrip("0123456789")


def value_fits(kind: str, value: str) -> bool:
    """Whether ``value`` satisfies WeChat's published limit for a keyword of ``kind``."""
    if not value or _CONTROL.search(value):
        return False
    pattern = _PATTERNS.get(kind)
    if pattern is not None:
        return pattern.fullmatch(value) is not None
    rule = _LENGTH_RULES.get(kind)
    return rule(value) if rule is not None else True


def _argument_invalid(field: str) -> WeChatError:
    return WeChatError(47003, f"argument invalid! {field} invalid")


def check_template_data(data: Any) -> dict[str, dict[str, str]]:
    """Validate a subscribe message's ``data``: ``{key: {"value": str}}``, values within limits."""
    if not isinstance(data, dict) or not data:
        raise _argument_invalid("data")
    clean: dict[str, dict[str, str]] = {}
    for key, item in data.items():
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, str):
            raise _argument_invalid(f"data.{key}.value")
        if not value_fits(keyword_kind(key), value):
            raise _argument_invalid(f"data.{key}.value")
        clean[key] = {"value": value}
    return clean


def check_keywords(data: dict[str, Any], keywords: frozenset[str]) -> None:
    """47003 unless ``data`` gives exactly the template's keywords: a template's keywords are
    fixed when it is added in the console, each with its type."""
    for key in sorted(data):
        if key not in keywords:
            raise _argument_invalid(f"data.{key}")
    for key in sorted(keywords - set(data)):
        raise WeChatError(47003, f"argument invalid! data.{key}.value is empty")


def check_send_options(body: dict[str, Any]) -> None:
    """Check the optional fields of subscribeMessage.send: page, miniprogram_state, lang."""
    page = body.get("page")
    if page is not None and not isinstance(page, str):
        raise _argument_invalid("page")
    state = body.get("miniprogram_state")
    if state is not None and state not in MINIPROGRAM_STATES:
        raise _argument_invalid("miniprogram_state")
    lang = body.get("lang")
    if lang is not None and lang not in LANGS:
        raise _argument_invalid("lang")


def find_risky_word(content: str, words: list[str]) -> str | None:
    """The first configured risky word found in ``content`` (case-insensitive), if any."""
    folded = content.casefold()
    for word in words:
        if word and word.casefold() in folded:
            return word
    return None


def sec_check_verdict(word: str | None, review: str | None = None) -> dict[str, Any]:
    """``result`` and ``detail`` of a msgSecCheck v2 answer, given the risky word found (or,
    failing one, a word that needs a person to read it: ``suggest`` review)."""
    if word:
        suggest, label, found = "risky", RISKY_LABEL, word
    elif review:
        suggest, label, found = "review", REVIEW_LABEL, review
    else:
        suggest, label, found = "pass", PASS_LABEL, None
    model = {"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label}
    detail: list[dict[str, Any]] = [{**model, "prob": 90 if word else (60 if review else 0)}]
    if found:
        keyword = {"strategy": "keyword", "errcode": 0, "suggest": suggest, "label": label}
        detail.append({**keyword, "level": 20 if word else 10, "keyword": found})
    return {"result": {"suggest": suggest, "label": label}, "detail": detail}
