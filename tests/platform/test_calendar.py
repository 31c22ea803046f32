"""Court calendars: China's 2026 schedule, Art. 85 periods, working time, config overrides.

Pure unit tests: no database, no wall clock. The 2026 dates are those of the State Council's
notice (国办发明电〔2025〕7号): 元旦 1/1–3 (1/4 Sunday worked), 春节 2/15–23 (2/14 and 2/28
Saturdays worked), 清明 4/4–6, 劳动节 5/1–5 (5/9 Saturday worked), 端午 6/19–21, 中秋 9/25–27,
国庆 10/1–7 (9/20 Sunday and 10/10 Saturday worked).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from server.platform.calendar import Calendars, CourtCalendar
from server.platform.config import CalendarOverrides, ConfigError, CourtSettings, load_settings
from server.platform.errors import NotFound

BEIJING = ZoneInfo("Asia/Shanghai")
D = dt.date

MAKE_UP_WORKDAYS_2026 = [
    D(2026, 1, 4),
    D(2026, 2, 14),
    D(2026, 2, 28),
    D(2026, 5, 9),
    D(2026, 9, 20),
    D(2026, 10, 10),
]
BREAKS_2026 = [
    (D(2026, 1, 1), D(2026, 1, 3)),
    (D(2026, 2, 15), D(2026, 2, 23)),
    (D(2026, 4, 4), D(2026, 4, 6)),
    (D(2026, 5, 1), D(2026, 5, 5)),
    (D(2026, 6, 19), D(2026, 6, 21)),
    (D(2026, 9, 25), D(2026, 9, 27)),
    (D(2026, 10, 1), D(2026, 10, 7)),
]


def court(
    extra_holidays: list[str] | None = None, extra_workdays: list[str] | None = None
) -> CourtSettings:
    return CourtSettings(
        id="bj-test",
        name="北京市测试法院",
        code="京0105",
        case_types={"civil": "民初"},
        calendar=CalendarOverrides(
            extra_holidays=extra_holidays or [], extra_workdays=extra_workdays or []
        ),
    )


def cal(**overrides: list[str]) -> CourtCalendar:
    return CourtCalendar(court(**overrides))


def bj(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=BEIJING)


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(n) for n in range((last - first).days + 1)]


# Days


def test_make_up_working_days_are_weekends_that_work() -> None:
    c = cal()
    for d in MAKE_UP_WORKDAYS_2026:
        assert d.weekday() >= 5 and c.is_working_day(d), d
        assert not c.is_statutory_holiday(d)
    assert D(2026, 1, 4).isoweekday() == 7  # a Sunday


def test_national_day_week_is_off_and_the_next_thursday_works() -> None:
    c = cal()
    for d in days(D(2026, 10, 1), D(2026, 10, 7)):
        assert not c.is_working_day(d) and c.is_statutory_holiday(d), d
    assert c.is_working_day(D(2026, 10, 8)) and c.is_working_day(D(2026, 10, 9))


def test_statutory_holidays_of_2026_are_exactly_the_notice() -> None:
    c = cal()
    expected = {d for first, last in BREAKS_2026 for d in days(first, last)}
    got = {d for d in days(D(2026, 1, 1), D(2026, 12, 31)) if c.is_statutory_holiday(d)}
    assert got == expected  # includes the weekends inside a break, e.g. Sunday 10-04


def test_ordinary_weekend_is_a_rest_day_not_a_holiday() -> None:
    c = cal()
    for d in (D(2026, 11, 21), D(2026, 11, 22)):
        assert not c.is_working_day(d) and not c.is_statutory_holiday(d)
    assert c.is_working_day(D(2026, 11, 23))


def test_local_date_is_the_court_s_date() -> None:
    c = cal()
    assert c.local_date(dt.datetime(2026, 11, 13, 16, 30, tzinfo=dt.UTC)) == D(2026, 11, 14)
    with pytest.raises(ValueError):
        c.local_date(dt.datetime(2026, 11, 13, 16, 30))


# Periods (Art. 85)


@pytest.mark.parametrize(
    ("event", "n", "end"),
    [
        (D(2026, 11, 9), 7, D(2026, 11, 16)),  # Mon + 7 = Mon: unchanged
        (D(2026, 9, 26), 7, D(2026, 10, 8)),  # 10-03 in the National Day break
        (D(2026, 10, 3), 7, D(2026, 10, 10)),  # may end on a make-up working Saturday
        (D(2026, 11, 14), 7, D(2026, 11, 23)),  # ordinary Saturday -> Monday
        (D(2026, 2, 7), 7, D(2026, 2, 14)),  # make-up Saturday before Spring Festival
        (D(2026, 2, 8), 7, D(2026, 2, 24)),  # inside the 9-day Spring Festival break
        (D(2026, 9, 1), 30, D(2026, 10, 8)),  # third-party revocation: 30 days
    ],
)
def test_period_end(event: dt.date, n: int, end: dt.date) -> None:
    assert cal().period_end(event, n) == end


def test_period_needs_a_day() -> None:
    with pytest.raises(ValueError):
        cal().period_end(D(2026, 11, 9), 0)


def test_extra_holiday_pushes_the_end() -> None:
    c = cal(extra_holidays=["2026-11-16"])
    assert c.period_end(D(2026, 11, 9), 7) == D(2026, 11, 17)
    assert c.is_statutory_holiday(D(2026, 11, 16)) and not c.is_working_day(D(2026, 11, 16))


def test_extra_workday_lets_a_period_end_on_a_sunday() -> None:
    c = cal(extra_workdays=["2026-11-22"])
    assert c.period_end(D(2026, 11, 15), 7) == D(2026, 11, 22)
    assert c.period_end(D(2026, 11, 14), 7) == D(2026, 11, 22)  # Saturday -> that Sunday


def test_extra_workday_wins_over_the_national_schedule() -> None:
    c = cal(extra_workdays=["2026-10-07"])
    assert c.is_working_day(D(2026, 10, 7)) and not c.is_statutory_holiday(D(2026, 10, 7))
    assert c.period_end(D(2026, 9, 26), 7) == D(2026, 10, 7)


def test_deadline_at_is_the_end_of_the_beijing_day_in_utc() -> None:
    c = cal()
    deadline = c.deadline_at(bj(2026, 9, 26, 10), 7)
    assert deadline == dt.datetime(2026, 10, 8, 15, 59, 59, 999_000, tzinfo=dt.UTC)
    assert deadline.utcoffset() == dt.timedelta(0)


def test_deadline_counts_from_the_local_date_not_the_utc_one() -> None:
    # 00:30 Saturday in Beijing is still Friday in UTC; the period runs from Saturday.
    event = bj(2026, 11, 14, 0, 30)
    assert event.astimezone(dt.UTC).date() == D(2026, 11, 13)
    assert cal().deadline_at(event, 7) == bj(2026, 11, 23) + dt.timedelta(days=1, milliseconds=-1)


# Working time


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        (bj(2026, 11, 23, 10), 1, bj(2026, 11, 23, 11)),  # inside the morning
        (bj(2026, 11, 23, 11, 30), 1, bj(2026, 11, 23, 14)),  # across lunch
        (bj(2026, 11, 23, 12, 15), 1, bj(2026, 11, 23, 14, 30)),  # starting at lunch
        (bj(2026, 11, 23, 9), 3, bj(2026, 11, 23, 12)),  # uses up the morning exactly
        (bj(2026, 11, 23, 17), 1, bj(2026, 11, 24, 9, 30)),  # across the evening
        (bj(2026, 11, 23, 20), 1, bj(2026, 11, 24, 10)),  # filed at night
        (bj(2026, 11, 20, 17), 1, bj(2026, 11, 23, 9, 30)),  # across a weekend
        (bj(2026, 11, 21, 10), 0.5, bj(2026, 11, 23, 9, 30)),  # filed on a Saturday
        (bj(2026, 9, 30, 17), 1, bj(2026, 10, 8, 9, 30)),  # across National Day
        (bj(2026, 10, 9, 17), 1, bj(2026, 10, 10, 9, 30)),  # into a make-up Saturday
        (bj(2026, 11, 23, 10), 8, bj(2026, 11, 24, 11)),  # more than a working day
    ],
)
def test_add_working_hours(start: dt.datetime, hours: float, due: dt.datetime) -> None:
    got = cal().add_working_hours(start, hours)
    assert got == due and got.tzinfo is dt.UTC


def test_add_working_hours_refuses_naive_or_negative() -> None:
    with pytest.raises(ValueError):
        cal().add_working_hours(dt.datetime(2026, 11, 23, 10), 1)
    with pytest.raises(ValueError):
        cal().add_working_hours(bj(2026, 11, 23, 10), -1)


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (bj(2026, 11, 23, 10), 1, bj(2026, 11, 24, 10)),  # same time next working day
        (bj(2026, 11, 20, 16), 1, bj(2026, 11, 23, 16)),  # Friday -> Monday
        (bj(2026, 11, 21, 10), 1, bj(2026, 11, 23, 17, 30)),  # Saturday -> close of Monday
        (bj(2026, 9, 30, 10), 1, bj(2026, 10, 8, 10)),  # across National Day
        (bj(2026, 11, 23, 10), 5, bj(2026, 11, 30, 10)),  # a working week
    ],
)
def test_add_working_days(start: dt.datetime, n: int, due: dt.datetime) -> None:
    assert cal().add_working_days(start, n) == due


@pytest.mark.parametrize(
    ("a", "b", "left"),
    [
        (D(2026, 11, 23), D(2026, 11, 23), 0),  # the deadline is today
        (D(2026, 11, 23), D(2026, 11, 30), 5),
        (D(2026, 9, 30), D(2026, 10, 9), 2),  # only 10-08 and 10-09 work
        (D(2026, 10, 9), D(2026, 10, 12), 2),  # make-up Saturday 10-10 and Monday 10-12
        (D(2026, 10, 9), D(2026, 9, 30), -2),  # two working days overdue
    ],
)
def test_working_days_between(a: dt.date, b: dt.date, left: int) -> None:
    assert cal().working_days_between(a, b) == left


# Calendars and config


def test_calendars_cache_per_court_and_name_unknown_courts() -> None:
    settings = load_settings()
    calendars = Calendars(settings)
    first = settings.courts[0].id
    assert calendars.for_court(first) is calendars.for_court(first)
    with pytest.raises(NotFound) as caught:
        calendars.for_court("no-such-court")
    assert caught.value.code == "court_not_found" and caught.value.status == 404


def court_dict(**calendar: list[str]) -> dict[str, object]:
    return {
        "id": "bj-test",
        "name": "北京市测试法院",
        "code": "京0105",
        "case_types": {"civil": "民初"},
        "calendar": calendar,
    }


@pytest.mark.parametrize("bad", ["2026-13-01", "2026-02-30", "20261001", "2026/10/01", "国庆"])
@pytest.mark.parametrize("field", ["extra_holidays", "extra_workdays"])
def test_bad_override_dates_are_rejected_at_start_up(field: str, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(courts=[court_dict(**{field: ["2026-11-16", bad]})])
    message = str(caught.value)
    assert f"courts.0.calendar.{field}" in message and repr(bad) in message


def test_a_date_cannot_be_both_holiday_and_workday() -> None:
    with pytest.raises(ConfigError, match="2026-11-16"):
        load_settings(
            courts=[court_dict(extra_holidays=["2026-11-16"], extra_workdays=["2026-11-16"])]
        )


def test_good_override_dates_load() -> None:
    settings = load_settings(courts=[court_dict(extra_holidays=["2026-11-16"])])
    assert Calendars(settings).for_court("bj-test").is_statutory_holiday(D(2026, 11, 16))
