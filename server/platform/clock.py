"""An injectable clock, so that no rule and no test depends on the wall clock."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

UTC = dt.UTC
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def local_day(when: dt.datetime | None) -> str:
    """A date as people in the court read it: 2026年11月30日 (Beijing time)."""
    return when.astimezone(SHANGHAI).strftime("%Y年%m月%d日") if when else ""


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FixedClock:
    """A clock that moves only when told to (tests, demos)."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware time")
        self._now = start.astimezone(UTC)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, when: dt.datetime) -> None:
        self._now = when.astimezone(UTC)

    def advance(self, **delta: float) -> dt.datetime:
        self._now += dt.timedelta(**delta)
        return self._now
