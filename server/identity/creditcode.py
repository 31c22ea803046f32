"""Unified social credit codes (统一社会信用代码, GB 32100-2015): charset and check character."""

from __future__ import annotations

import re
import unicodedata

_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_PATTERN = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def credit_check_char(first17: str) -> str:
    total = sum(_CHARS.index(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHARS[(31 - total % 31) % 31]


def normalize_credit_code(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip().upper()


def credit_code_problem(raw: str) -> str | None:
    """A Chinese description of what is wrong with ``raw``, or None when it is valid."""
    value = normalize_credit_code(raw)
    if not _PATTERN.fullmatch(value):
        return "统一社会信用代码应为18位数字或大写字母（不含I、O、S、V、Z）"
    if credit_check_char(value[:17]) != value[17]:
        return "统一社会信用代码校验位错误"
    return None
