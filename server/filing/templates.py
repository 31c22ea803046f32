"""Element-style complaint forms (要素式起诉状): lookup, and the validator filings call.

The validator is pure: it takes ``today`` instead of reading a clock, returns every problem at
once, and names each element by its Chinese label, so the mini-program can show them all.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from models.templates import Element, ElementType, Template, TemplateSummary
from server.filing.errors import TemplateNotFound
from server.filing.template_data import TEMPLATES

# Amounts stay far inside MongoDB's 64-bit integers (and JSON's exact integers).
MAX_AMOUNT_FEN = 10**15
MAX_INTEGER = 2**53
EARLIEST_DATE = dt.date(1900, 1, 1)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Problem = dict[str, Any]
Check = Callable[[Element, Any, dt.date], str | None]


@cache
def _by_id() -> dict[str, Template]:
    return {t.id: t for t in TEMPLATES}


def list_templates() -> list[TemplateSummary]:
    return [TemplateSummary.model_validate(t.model_dump(exclude={"elements"})) for t in TEMPLATES]


def get_template(template_id: str) -> Template:
    """The template; NotFound (``template_not_found``) for an unknown id."""
    found = _by_id().get(template_id)
    if found is None:
        raise TemplateNotFound()
    return found


# ---- one check per element type: a Chinese message, or None when the value is fine


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_text(el: Element, value: Any, today: dt.date) -> str | None:
    if not isinstance(value, str):
        return f"{el.label}应为文字"
    limit = el.length_limit
    if limit is not None and len(value.strip()) > limit:
        return f"{el.label}不能超过{limit}个字"
    return None


def _check_amount(el: Element, value: Any, today: dt.date) -> str | None:
    if not _is_int(value) or value < 0 or value > MAX_AMOUNT_FEN:
        return f"{el.label}应为以分为单位的非负整数金额"
    if el.min is not None and value < el.min:
        return f"{el.label}不能少于{_yuan(el.min)}元"
    if el.max is not None and value > el.max:
        return f"{el.label}不能超过{_yuan(el.max)}元"
    return None


def _check_integer(el: Element, value: Any, today: dt.date) -> str | None:
    if not _is_int(value) or abs(value) > MAX_INTEGER:
        return f"{el.label}应为整数"
    if el.min is not None and value < el.min:
        return f"{el.label}不能小于{el.min}"
    if el.max is not None and value > el.max:
        return f"{el.label}不能大于{el.max}"
    return None


def _check_date(el: Element, value: Any, today: dt.date) -> str | None:
    try:
        if not (isinstance(value, str) and _ISO_DATE.match(value)):
            raise ValueError
        day = dt.date.fromisoformat(value)
    except ValueError:
        return f"{el.label}应为有效日期，格式为 YYYY-MM-DD"
    if day < EARLIEST_DATE:
        return f"{el.label}不合理"
    if el.not_future and day > today:
        return f"{el.label}不能晚于今天"
    return None


def _check_boolean(el: Element, value: Any, today: dt.date) -> str | None:
    return None if isinstance(value, bool) else f"{el.label}应为“是”或“否”"


def _check_choice(el: Element, value: Any, today: dt.date) -> str | None:
    if isinstance(value, str) and value in (el.choices or []):
        return None
    return f"{el.label}只能选择：{'、'.join(el.choices or [])}"


CHECKS: dict[ElementType, Check] = {
    ElementType.text: _check_text,
    ElementType.textarea: _check_text,
    ElementType.amount_fen: _check_amount,
    ElementType.integer: _check_integer,
    ElementType.date: _check_date,
    ElementType.boolean: _check_boolean,
    ElementType.choice: _check_choice,
}


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _missing(el: Element) -> str:
    verb = "请选择" if el.type in (ElementType.choice, ElementType.boolean) else "请填写"
    return f"{verb}{el.label}"


def validate_elements(
    template: Template, elements: Mapping[str, Any], today: dt.date
) -> list[Problem]:
    """Every problem with ``elements`` against ``template``, in form order, then unknown keys.

    Each problem is ``{"loc": ["elements", key], "msg": "<Chinese, naming the label>"}``;
    an empty list means the elements are complete and valid. ``null`` or a blank string
    counts as not filled in.
    """
    problems: list[Problem] = []
    for el in template.elements:
        value = elements.get(el.key)
        if _is_blank(value):
            msg = _missing(el) if el.required else None
        else:
            msg = CHECKS[el.type](el, value, today)
        if msg:
            problems.append({"loc": ["elements", el.key], "msg": msg})
    known = {el.key for el in template.elements}
    for key in elements:
        if key not in known:
            problems.append({"loc": ["elements", key], "msg": f"未知的要素：{key[:40]}"})
    return problems
