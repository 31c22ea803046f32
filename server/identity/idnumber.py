"""Resident identity numbers (GB 11643-1999): check digit, date of birth, masking."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_PATTERN = re.compile(r"^[0-9]{17}[0-9X]$")
# First digit of the administrative division code: 1-6 mainland regions, 7 Taiwan, 8 HK/Macau.
_REGION_FIRST = set("12345678")


def check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def id_number_problem(raw: str, today: dt.date) -> str | None:
    """Return a Chinese description of what is wrong with ``raw``, or None when it is valid."""
    value = normalize_id_number(raw)
    if not _PATTERN.fullmatch(value):
        return "身份证号应为18位，前17位为数字，最后一位为数字或X"
    if value[0] not in _REGION_FIRST:
        return "身份证号的地区码无效"
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "身份证号中的出生日期不存在"
    if born > today or born.year < 1900:
        return "身份证号中的出生日期不合理"
    if check_char(value[:17]) != value[17]:
        return "身份证号校验码错误"
    return None


def normalize_id_number(raw: str) -> str:
    """ASCII, upper case: full-width ``１１０…ｘ`` is the same number, and must hash the same."""
    return unicodedata.normalize("NFKC", raw).strip().upper()


def mask_id_number(value: str) -> str:
    """``110***********1234``: the region's first three and the last four characters."""
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
