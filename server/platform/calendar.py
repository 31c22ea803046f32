"""Court calendars: working days, statutory holidays and the periods of procedure.

China's schedule comes from the ``holidays`` package: its statutory holidays plus the State
Council's make-up working days (调休上班), which it exposes as ``weekend_workdays`` and honours
in ``is_working_day``. Each court's config overrides win over the package: ``extra_holidays``
never work, ``extra_workdays`` always do. The package only knows a year's make-up days once
the State Council has published that year's notice (each November), so a court adds the next
year's make-up days through config until the package is upgraded.

Every method is pure; dates are ``datetime.date`` in the court's timezone, times are
timezone-aware ``datetime`` and come back in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays

from server.platform.config import CourtSettings, Settings
from server.platform.errors import CourtNotFound

# The usual court office hours (local time); work-order deadlines count only this time.
WORKING_WINDOWS: tuple[tuple[time, time], ...] = (
    (time(9, 0), time(12, 0)),
    (time(13, 30), time(17, 30)),
)
# The longest run of non-working days a holiday break can span (Spring Festival: 9 days).
_MAX_BREAK_DAYS = 12
_ONE_DAY = timedelta(days=1)


@cache
def _china() -> holidays.HolidayBase:
    # One shared instance: it fills in each year on first use (expand=True).
    return holidays.country_holidays("CN")


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is needed")
    return t


def _window_hours(windows: Sequence[tuple[time, time]]) -> float:
    if not windows:
        raise ValueError("at least one working window is needed")
    total = 0.0
    previous_end = time.min
    for start, end in windows:
        if not previous_end <= start < end:
            raise ValueError("working windows must be ordered and not overlap")
        length = datetime.combine(date.min, end) - datetime.combine(date.min, start)
        total += length.total_seconds()
        previous_end = end
    return total / 3600


class CourtCalendar:
    """One court's working calendar."""

    def __init__(
        self, court: CourtSettings, windows: Sequence[tuple[time, time]] = WORKING_WINDOWS
    ) -> None:
        self.court_id = court.id
        self.tz = ZoneInfo(court.timezone)
        self.windows = tuple(windows)
        self.day_hours = _window_hours(self.windows)
        self._holidays = frozenset(map(date.fromisoformat, court.calendar.extra_holidays))
        self._workdays = frozenset(map(date.fromisoformat, court.calendar.extra_workdays))
        self._china = _china()
        # every work order's deadlines walk the same few days: each day's windows made once
        self._windows_on = lru_cache(maxsize=1024)(self._day_windows)

    # Days

    def is_working_day(self, d: date) -> bool:
        """Mon–Fri unless a holiday; Sat/Sun only as a make-up working day (调休上班)."""
        if d in self._workdays:
            return True
        if d in self._holidays:
            return False
        return bool(self._china.is_working_day(d))

    def is_statutory_holiday(self, d: date) -> bool:
        """A day off of the holiday schedule or of the court's overrides.

        An ordinary weekend is not one, but a weekend inside a holiday break is: the
        schedule's "10月1日至7日放假" includes Sunday 2026-10-04, which the package itself
        does not list, so a rest day joined to a listed holiday by rest days counts too.
        """
        if self.is_working_day(d):
            return False
        return self._listed_holiday(d) or self._inside_break(d)

    def _listed_holiday(self, d: date) -> bool:
        return d in self._holidays or d in self._china

    def _inside_break(self, d: date) -> bool:
        for step in (-_ONE_DAY, _ONE_DAY):
            day = d + step
            for _ in range(_MAX_BREAK_DAYS):
                if self.is_working_day(day):
                    break
                if self._listed_holiday(day):
                    return True
                day += step
        return False

    def next_working_day(self, d: date) -> date:
        """``d`` itself when it is a working day, else the first working day after it."""
        while not self.is_working_day(d):
            d += _ONE_DAY
        return d

    def local_date(self, t: datetime) -> date:
        """The calendar date of ``t`` at the court."""
        return _aware(t).astimezone(self.tz).date()

    # Periods of procedure (Civil Procedure Law, Art. 85)

    def period_end(self, event: date, days: int) -> date:
        """The last day of a period of ``days`` days counted from the day after ``event``.

        It is ``event + days``, unless that day is not a working day: then the period ends on
        the first working day after it. Art. 85 moves only a last day that is a "法定休假日";
        in practice (and in the courts' own rules) ordinary weekends count as such, so a
        period ending on a plain Saturday ends on Monday, while one ending on a make-up
        working Saturday (or on a configured extra workday) ends that very day.
        """
        if days < 1:
            raise ValueError("a period lasts at least one day")
        return self.next_working_day(event + timedelta(days=days))

    def end_of_day(self, d: date) -> datetime:
        """The last instant of the local day ``d``, in UTC, to the millisecond (what BSON keeps,
        so that a stored deadline equals the computed one)."""
        last = time(23, 59, 59, 999_000)
        return datetime.combine(d, last, tzinfo=self.tz).astimezone(UTC)

    def deadline_at(self, event_time: datetime, days: int) -> datetime:
        """The end (23:59:59.999 local) of the period's last day, in UTC."""
        return self.end_of_day(self.period_end(self.local_date(event_time), days))

    def working_days_between(self, a: date, b: date) -> int:
        """Working days after ``a`` up to and including ``b``: what is left on day ``a`` of a
        deadline on day ``b`` (0 on the deadline day itself; negative once it has passed)."""
        if b < a:
            return -self.working_days_between(b, a)
        count = 0
        day = a + _ONE_DAY
        while day <= b:
            count += self.is_working_day(day)
            day += _ONE_DAY
        return count

    # Working time (work orders)

    def _spans(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working windows (UTC) from ``start`` on, the first one clipped to it."""
        day = self.local_date(start)
        while True:
            for begin, end in self._windows_on(day):
                if end > start:
                    yield max(begin, start), end
            day += _ONE_DAY

    def _day_windows(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The local day's working windows in UTC; none on a day off."""
        if not self.is_working_day(day):
            return ()
        return tuple(
            (
                datetime.combine(day, ws, tzinfo=self.tz).astimezone(UTC),
                datetime.combine(day, we, tzinfo=self.tz).astimezone(UTC),
            )
            for ws, we in self.windows
        )

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` of working time after ``start`` (UTC).

        Only the court's working windows count; a start outside them begins at the next
        window, and a deadline that uses up a window exactly ends at that window's close.
        """
        if hours < 0:
            raise ValueError("hours must not be negative")
        start = _aware(start).astimezone(UTC)
        left = timedelta(hours=hours)
        for begin, end in self._spans(start):
            if left <= end - begin:
                return begin + left
            left -= end - begin
        raise AssertionError("unreachable: the working windows never end")

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The moment ``n`` working days of working time after ``start`` (UTC).

        From inside office hours that is the same clock time ``n`` working days later; from
        outside them (evening, weekend, holiday) it is the close of the ``n``th working day.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        return self.add_working_hours(start, n * self.day_hours)


class Calendars:
    """Every configured court's calendar, built on first use."""

    def __init__(self, settings: Settings) -> None:
        self._courts = {court.id: court for court in settings.courts}
        self._built: dict[str, CourtCalendar] = {}

    def for_court(self, court_id: str) -> CourtCalendar:
        calendar = self._built.get(court_id)
        if calendar is None:
            try:
                court = self._courts[court_id]
            except KeyError:
                raise CourtNotFound() from None
            calendar = self._built[court_id] = CourtCalendar(court)
        return calendar
