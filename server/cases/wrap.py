"""Line breaking for the court's documents: by tokens, never inside a number, date or 案号.

A Chinese line may break between any two characters, but not inside ``（2026）京0105民初1号``,
``2026年12月07日``, ``2,300.00``, ``09:30`` or a query code: each of those is one token. The
rules of Chinese typesetting (禁则) are kept too: a closing mark (，。、）…) never starts a line
and an opening mark (（《“…) never ends one, so each is glued to its neighbour.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Longest first: a case number holds a year and digits that the later patterns would split.
_UNBREAKABLE = re.compile(
    r"（\d{4}）[\u4e00-\u9fff]\d*[\u4e00-\u9fff]{1,3}\d+号"  # 案号
    r"|\d{4}年\d{1,2}月\d{1,2}日(?:\s?\d{1,2}:\d{2})?"  # a date, with its time
    r"|\d{1,2}月\d{1,2}日"
    r"|[0-9A-Za-z][0-9A-Za-z.,:%/@_+\-]*[0-9A-Za-z%]"  # numbers, amounts, codes, phones
    r"|[0-9A-Za-z]"
)
_CLOSING = set("，。、；：！？）》」』】〕”’%·…,.;:!?)")
_OPENING = set("（《「『【〔“‘(")


def tokens(text: str) -> list[str]:
    """The text as unbreakable pieces, punctuation glued to where it belongs."""
    raw: list[str] = []
    at = 0
    for match in _UNBREAKABLE.finditer(text):
        raw.extend(text[at : match.start()])
        raw.append(match.group())
        at = match.end()
    raw.extend(text[at:])
    glued: list[str] = []
    pending = ""  # opening marks waiting for what follows them
    for piece in raw:
        if piece in _OPENING:
            pending += piece
        elif glued and not pending and (piece in _CLOSING or piece.isspace()):
            glued[-1] += piece
        else:
            glued.append(pending + piece)
            pending = ""
    if pending:
        glued.append(pending)
    return glued


def wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` (as ``measure`` says) between tokens;
    a token wider than a line stands alone on its own line."""
    lines: list[str] = []
    line = ""
    for token in tokens(text):
        if line and measure(line + token) > width:
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line += token
    lines.append(line.rstrip())
    return lines
