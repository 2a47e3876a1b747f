"""Business calendars: config forms, real dates (holidays, DST) and properties."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtriage.errors import CalendarError
from mailtriage.sla import Calendar, calendar_from_config
from mailtriage.sla.calendar import DailyWindow

UTC = timezone.utc
AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")

ALWAYS = calendar_from_config("always", {"timezone": "UTC", "hours": "24x7"})
OFFICE = calendar_from_config("office", {"timezone": "Europe/Amsterdam",
                                         "hours": {"mon-fri": "08:00-20:00"}, "holidays": "NL"})
NEW_YORK = calendar_from_config("ny", {"timezone": "America/New_York",
                                       "hours": {"mon-fri": "09:00-17:00"}, "holidays": "US"})
NIGHTS = calendar_from_config("nights", {"timezone": "Europe/Amsterdam",
                                         "hours": {"mon-fri": "22:00-06:00"}, "holidays": "NL"})
MIXED = calendar_from_config("mixed", {
    "timezone": "America/New_York",
    "hours": {"mon-thu": "09:00-17:00", "fri": "09:00-15:00", "sat": ["01:00-03:00", "22:00-02:30"]},
    "holidays": {"country": "US", "subdiv": "NY"}, "extra_holidays": ["2026-12-24", date(2026, 12, 31)],
})
CALENDARS = [ALWAYS, OFFICE, NEW_YORK, NIGHTS, MIXED]


def ams(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)  # type: ignore[misc]


def nyc(*args: int) -> datetime:
    return datetime(*args, tzinfo=NYC)  # type: ignore[misc]


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# -- config forms ------------------------------------------------------------

def test_office_calendar_from_contract() -> None:
    assert OFFICE.timezone.key == "Europe/Amsterdam"
    assert OFFICE.weekly[:5] == ((DailyWindow(480, 1200),),) * 5
    assert OFFICE.weekly[5:] == ((), ())
    assert (OFFICE.country, OFFICE.subdiv) == ("NL", None)


def test_24x7() -> None:
    assert ALWAYS.weekly == ((DailyWindow(0, 1440),),) * 7
    assert ALWAYS.windows(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)).__next__() \
        == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


def test_several_keys_lists_wrapping_ranges_and_24_00() -> None:
    cal = calendar_from_config("c", {"timezone": "UTC", "hours": {
        "mon-thu": "09:00-17:00", "fri": "09:00-15:00", "sat": ["13:00-15:00", "10:00-12:00"],
        "sun": "20:00-24:00"}})
    assert cal.weekly[4] == (DailyWindow(540, 900),)
    assert cal.weekly[5] == (DailyWindow(600, 720), DailyWindow(780, 900))
    assert cal.weekly[6] == (DailyWindow(1200, 1440),)
    wrapped = calendar_from_config("w", {"timezone": "UTC", "hours": {"fri-mon": "8:00-9:00", "wed,thu": []}})
    assert [bool(day) for day in wrapped.weekly] == [True, False, False, False, True, True, True]


def test_window_across_midnight_belongs_to_its_start_day() -> None:
    assert NIGHTS.weekly[0] == (DailyWindow(1320, 1800),)
    assert str(NIGHTS.weekly[0][0]) == "22:00-06:00"


def test_holidays_with_subdivision() -> None:
    lincoln = nyc(2026, 2, 12, 10, 0)  # a Thursday; a New York State holiday only
    assert calendar_from_config("a", {"timezone": "America/New_York", "hours": {"mon-fri": "09:00-17:00"},
                                      "holidays": "US-NY"}).is_working(lincoln) is False
    assert MIXED.is_working(lincoln) is False
    assert NEW_YORK.is_working(lincoln) is True


@pytest.mark.parametrize("data, message, path", [
    ({"timezone": "UTC", "hours": {"mon-fry": "09:00-17:00"}},
     "hours: 'mon-fry' is not a day or day range", ("hours", "mon-fry")),
    ({"timezone": "Europe/Amsterdm", "hours": "24x7"}, "timezone: 'Europe/Amsterdm' is not an IANA", ("timezone",)),
    ({"timezone": "localtime", "hours": "24x7"}, "is not an IANA time zone", ("timezone",)),
    ({"timezone": "UTC", "hours": "24x7", "holidays": "XX"}, "holidays: 'XX' is not a country", ("holidays",)),
    ({"timezone": "UTC", "hours": "24x7", "holidays": "US-ZZ"}, "'US-ZZ' is not a country", ("holidays",)),
    ({"timezone": "UTC", "hours": "24x7", "holidays": False}, "Norway is written 'NO'", ("holidays",)),
    ({"timezone": "UTC", "hours": "24x7", "holidays": ["NL", "BE"]}, "is not a country code", ("holidays",)),
    ({"timezone": "UTC", "hours": {"mon-": "09:00-17:00"}}, "'mon-' is not a day", ("hours", "mon-")),
    ({"timezone": "UTC", "hours": "24x7", "holidays": "NL-"}, "is not a country code", ("holidays",)),
    ({"timezone": "UTC", "hours": {"mon": "25:00-26:00"}}, "mon: '25:00-26:00' is not a time range", ("hours", "mon")),
    ({"timezone": "UTC", "hours": {"mon": "09:00"}}, "is not a time range", ("hours", "mon")),
    ({"timezone": "UTC", "hours": {"mon": 600}}, "mon: 600 is not a time range", ("hours", "mon")),
    ({"timezone": "UTC", "hours": {"mon": "24:00-06:00"}}, "is not a time range", ("hours", "mon")),
    ({"timezone": "UTC", "hours": {"mon": "09:00-09:00"}}, "is empty", ("hours", "mon")),
    ({"timezone": "UTC", "hours": {"mon": {"a": 1}}}, "is not a time range", ("hours", "mon")),
    ({"timezone": "UTC", "hours": {"mon-fri": "09:00-17:00", "fri": "09:00-12:00"}},
     "fri is given twice", ("hours", "fri")),
    ({"timezone": "UTC", "hours": {"sat": ["10:00-12:00", "11:00-13:00"]}},
     "'sat 10:00-12:00' overlaps 'sat 11:00-13:00'", ("hours",)),
    ({"timezone": "UTC", "hours": {"sun": "22:00-06:00", "mon": "05:00-08:00"}},
     "'sun 22:00-06:00' overlaps 'mon 05:00-08:00'", ("hours",)),
    ({"timezone": "UTC", "hours": {"mon-sun": []}}, "no working time in the week", ("hours",)),
    ({"timezone": "UTC", "hours": {"mon-sun": "closed"}}, "no working time in the week", ("hours",)),
    ({"timezone": "UTC", "hours": "9to5"}, "neither 24x7 nor days", ("hours",)),
    ({"timezone": "UTC", "hours": "24x7", "extra_holidays": ["2026-13-01"]},
     "extra_holidays: '2026-13-01' is not a date", ("extra_holidays", 0)),
    ({"timezone": "UTC", "hours": "24x7", "hollidays": "NL"}, "hollidays: unknown key", ("hollidays",)),
    ({"hours": "24x7"}, "has no timezone", ()),
    ("24x7", "must be a mapping", ()),
])
def test_config_errors(data: object, message: str, path: tuple[object, ...]) -> None:
    with pytest.raises(ValueError, match=message) as info:
        calendar_from_config("office", data)
    assert isinstance(info.value, CalendarError)
    assert info.value.path == path


def test_calendar_is_a_frozen_hashable_value() -> None:
    again = calendar_from_config("office", {"timezone": "Europe/Amsterdam",
                                            "hours": {"mon-fri": "08:00-20:00"}, "holidays": "nl"})
    assert again == OFFICE and hash(again) == hash(OFFICE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        OFFICE.name = "other"  # type: ignore[misc]


# -- real dates ----------------------------------------------------------------

@pytest.mark.parametrize("calendar, start, duration, due", [
    # Friday evening ticket, 1h target: 10 minutes on Friday, 50 on Monday.
    (OFFICE, ams(2026, 3, 6, 19, 50), hours(1), ams(2026, 3, 9, 8, 50)),
    # Easter: Good Friday 3 April and Easter Monday 6 April are NL holidays.
    (OFFICE, ams(2026, 4, 2, 19, 50), hours(1), ams(2026, 4, 7, 8, 50)),
    # Pentecost Monday 25 May 2026.
    (OFFICE, ams(2026, 5, 22, 19, 50), hours(1), ams(2026, 5, 26, 8, 50)),
    # King's Day, Monday 27 April 2026.
    (OFFICE, ams(2026, 4, 24, 19, 0), hours(2), ams(2026, 4, 28, 9, 0)),
    # Christmas 2025: Wed 24 works, Thu 25 and Fri 26 are holidays.
    (OFFICE, ams(2025, 12, 24, 19, 0), hours(2), ams(2025, 12, 29, 9, 0)),
    # Start outside hours: the clock starts at the next opening.
    (OFFICE, ams(2026, 3, 7, 12, 0), hours(1), ams(2026, 3, 9, 9, 0)),
    (OFFICE, ams(2026, 3, 9, 6, 0), hours(12), ams(2026, 3, 9, 20, 0)),  # ends on the close
    # 3d on a 12x5 calendar is 72 working hours: six working days.
    (OFFICE, ams(2026, 3, 2, 8, 0), timedelta(days=3), ams(2026, 3, 9, 20, 0)),
    (OFFICE, ams(2026, 3, 7, 12, 0), timedelta(0), ams(2026, 3, 7, 12, 0)),  # zero: start itself
    (NEW_YORK, nyc(2026, 7, 2, 16, 0), hours(2), nyc(2026, 7, 6, 10, 0)),  # 3 July: the 4th observed
    (NEW_YORK, nyc(2026, 11, 25, 16, 30), hours(1), nyc(2026, 11, 27, 9, 30)),  # Thanksgiving
    # Night window: Thursday's window ends Friday 06:00; Friday's starts 22:00.
    (NIGHTS, ams(2026, 3, 6, 5, 0), hours(2), ams(2026, 3, 6, 23, 0)),
    # Friday's window runs into Saturday; nothing on Saturday or Sunday night.
    (NIGHTS, ams(2026, 3, 7, 5, 0), hours(2), ams(2026, 3, 9, 23, 0)),
    # Sunday 5 April is a holiday but has no window anyway; Easter Monday's window is cancelled,
    # Good Friday's window (starting Friday 3 April) is cancelled too.
    (NIGHTS, ams(2026, 4, 2, 23, 0), hours(8), ams(2026, 4, 7, 23, 0)),
])
def test_add_on_real_dates(calendar: Calendar, start: datetime, duration: timedelta, due: datetime) -> None:
    result = calendar.add(start, duration)
    assert result == due
    assert result.tzinfo is UTC


def test_window_from_day_before_holiday_runs_into_it() -> None:
    # Thursday 24 Dec 2026 22:00 → Friday 25 Dec 06:00 counts; Friday 25 22:00 does not.
    assert NIGHTS.is_working(ams(2026, 12, 25, 3, 0))
    assert not NIGHTS.is_working(ams(2026, 12, 25, 23, 0))


def test_christmas_and_extra_holidays() -> None:
    assert OFFICE.is_working(ams(2025, 12, 24, 10, 0))
    assert not OFFICE.is_working(ams(2025, 12, 25, 10, 0))
    assert not OFFICE.is_working(ams(2025, 12, 26, 10, 0))
    company = dataclasses.replace(OFFICE, extra_holidays=frozenset({date(2025, 12, 24)}))
    assert not company.is_working(ams(2025, 12, 24, 10, 0))
    assert company.add(ams(2025, 12, 23, 19, 0), hours(2)) == ams(2025, 12, 29, 9, 0)
    assert not MIXED.is_working(nyc(2026, 12, 24, 10, 0))
    assert not MIXED.is_working(nyc(2026, 12, 31, 10, 0))


def test_kings_day_moves_to_saturday_when_the_27th_is_a_sunday() -> None:
    assert OFFICE.is_holiday(date(2025, 4, 26)) and not OFFICE.is_holiday(date(2025, 4, 27))
    assert OFFICE.is_holiday(date(2026, 4, 27))


def test_is_working_and_next_opening_at_boundaries() -> None:
    assert OFFICE.is_working(ams(2026, 3, 9, 8, 0))
    assert not OFFICE.is_working(ams(2026, 3, 9, 20, 0))
    assert OFFICE.next_opening(ams(2026, 3, 9, 20, 0)) == ams(2026, 3, 10, 8, 0)
    assert OFFICE.next_opening(ams(2026, 3, 9, 12, 0)) == ams(2026, 3, 9, 12, 0)


# -- daylight saving time ----------------------------------------------------------

AMS_ALWAYS = calendar_from_config("a", {"timezone": "Europe/Amsterdam", "hours": "24x7"})
NYC_ALWAYS = calendar_from_config("n", {"timezone": "America/New_York", "hours": "24x7"})
AMS_SMALL_HOURS = calendar_from_config("s", {"timezone": "Europe/Amsterdam", "hours": {"mon-sun": "01:00-03:00"}})
NYC_SMALL_HOURS = calendar_from_config("s", {"timezone": "America/New_York", "hours": {"mon-sun": "01:00-03:00"}})


@pytest.mark.parametrize("calendar, make, spring, autumn", [
    (AMS_ALWAYS, ams, date(2026, 3, 29), date(2026, 10, 25)),
    (NYC_ALWAYS, nyc, date(2026, 3, 8), date(2026, 11, 1)),
])
def test_24x7_local_days_are_23_and_25_hours(calendar: Calendar, make, spring: date, autumn: date) -> None:
    for day, length in ((spring, 23), (autumn, 25), (spring - timedelta(days=7), 24)):
        start = make(day.year, day.month, day.day)
        end = make(*(day + timedelta(days=1)).timetuple()[:3])
        assert calendar.between(start, end) == hours(length)
        assert ALWAYS.between(start, end) == hours(length)  # UTC 24x7 counts real time too
        assert calendar.add(start, hours(length)) == end


@pytest.mark.parametrize("calendar, make, spring, autumn", [
    (AMS_SMALL_HOURS, ams, date(2026, 3, 29), date(2026, 10, 25)),
    (NYC_SMALL_HOURS, nyc, date(2026, 3, 8), date(2026, 11, 1)),
])
def test_small_hours_window_on_dst_days(calendar: Calendar, make, spring: date, autumn: date) -> None:
    def window(day: date) -> timedelta:
        return calendar.between(make(day.year, day.month, day.day), make(day.year, day.month, day.day, 12))
    assert window(spring) == hours(1)  # 01:00 → 03:00, but 02:00-03:00 does not exist
    assert window(autumn) == hours(3)  # 01:00 → 03:00 with 01:00-02:00 twice
    assert window(spring + timedelta(days=1)) == hours(2)
    opening = make(spring.year, spring.month, spring.day, 1)
    assert calendar.add(opening, timedelta(minutes=30)) == make(spring.year, spring.month, spring.day, 1, 30)
    assert calendar.add(opening, hours(1)) == make(spring.year, spring.month, spring.day, 3)
    assert calendar.add(opening, hours(1.5)) == make(spring.year, spring.month, spring.day + 1, 1, 30)


def test_add_across_autumn_change_inside_the_window() -> None:
    opening = ams(2026, 10, 25, 1, 0)
    # 2h of real time after 01:00 CEST is 02:00 CET (the second 02:00).
    result = AMS_SMALL_HOURS.add(opening, hours(2))
    assert result == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert result.astimezone(AMS).isoformat() == "2026-10-25T02:00:00+01:00"


def test_nonexistent_wall_time_is_moved_later_by_the_gap() -> None:
    cal = calendar_from_config("g", {"timezone": "Europe/Amsterdam", "hours": {"sun": "02:30-04:00"}})
    assert cal.windows(ams(2026, 3, 29), ams(2026, 3, 30)).__next__() == (
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC), datetime(2026, 3, 29, 2, 0, tzinfo=UTC))  # 03:30-04:00 CEST


def test_night_window_over_dst_weekends() -> None:
    cal = calendar_from_config("n", {"timezone": "Europe/Amsterdam", "hours": {"sat": "22:00-06:00"}})
    assert cal.between(ams(2026, 3, 28), ams(2026, 3, 30)) == hours(7)
    assert cal.between(ams(2026, 10, 24), ams(2026, 10, 26)) == hours(9)


# -- windows, explain, guards --------------------------------------------------------

def test_explain_lists_the_windows_that_counted() -> None:
    assert OFFICE.explain(ams(2026, 3, 6, 19, 50), hours(1)) == [
        (ams(2026, 3, 6, 19, 50).astimezone(UTC), ams(2026, 3, 6, 20, 0).astimezone(UTC)),
        (ams(2026, 3, 9, 8, 0).astimezone(UTC), ams(2026, 3, 9, 8, 50).astimezone(UTC)),
    ]
    assert OFFICE.explain(ams(2026, 3, 6, 19, 50), timedelta(0)) == []


def test_windows_merge_touching_days_and_clip_to_the_range() -> None:
    start, end = datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 9, 12, tzinfo=UTC)
    assert list(ALWAYS.windows(start, end)) == [(start, end)]
    assert list(ALWAYS.windows(end, start)) == []
    assert ALWAYS.between(end, start) == timedelta(0)


def test_refuses_naive_instants_and_negative_durations() -> None:
    with pytest.raises(ValueError, match="naive"):
        OFFICE.add(datetime(2026, 3, 6, 12, 0), hours(1))
    with pytest.raises(ValueError, match="negative"):
        OFFICE.add(ams(2026, 3, 6, 12, 0), -hours(1))


def test_a_calendar_without_working_time_fails_instead_of_looping() -> None:
    sundays = frozenset(date(2026, 1, 4) + timedelta(weeks=n) for n in range(52 * 4))
    cal = Calendar("never", AMS, ((),) * 6 + ((DailyWindow(0, 60),),), extra_holidays=sundays)
    with pytest.raises(ValueError, match="no working time"):
        cal.add(ams(2026, 1, 1), hours(1))
    assert cal.between(ams(2026, 1, 1), ams(2029, 1, 1)) == timedelta(0)  # bounded: an answer


# -- properties ----------------------------------------------------------------------

# Anywhere in three years, or near a DST change, a holiday or a window edge.
EDGES = [ams(2026, 3, 29, 2), ams(2026, 10, 25, 2), nyc(2026, 3, 8, 2), nyc(2026, 11, 1, 1),
         ams(2026, 12, 24, 20), ams(2026, 4, 27), ams(2026, 3, 6, 20), nyc(2026, 3, 7, 22)]
instants = st.one_of(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.builds(lambda edge, offset: (edge + offset).astimezone(UTC), st.sampled_from(EDGES),
              st.integers(min_value=-1800, max_value=1800).map(lambda m: timedelta(minutes=m))),
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10))
examples = settings(max_examples=40, deadline=None)


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c.name)
@examples
@given(start=instants, duration=durations)
def test_between_inverts_add(calendar: Calendar, start: datetime, duration: timedelta) -> None:
    assert calendar.between(start, calendar.add(start, duration)) == duration


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c.name)
@examples
@given(start=instants, duration=durations.filter(bool))
def test_add_ends_inside_a_window_or_on_its_close(calendar: Calendar, start: datetime, duration: timedelta) -> None:
    due = calendar.add(start, duration)
    assert calendar.is_working(due - timedelta(microseconds=1))
    assert any(opening < due <= close for opening, close in calendar.windows(due - hours(25), due + hours(25)))


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c.name)
@examples
@given(start=instants, first=durations, second=durations)
def test_add_is_monotonic_and_composes(calendar: Calendar, start: datetime,
                                       first: timedelta, second: timedelta) -> None:
    small, large = sorted((first, second))
    assert calendar.add(start, small) <= calendar.add(start, large)
    assert calendar.add(calendar.add(start, first), second) == calendar.add(start, first + second)


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c.name)
@examples
@given(points=st.lists(instants, min_size=3, max_size=3))
def test_between_adds_up(calendar: Calendar, points: list[datetime]) -> None:
    a, b, c = sorted(points)
    assert calendar.between(a, b) + calendar.between(b, c) == calendar.between(a, c)


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: c.name)
@examples
@given(instant=instants)
def test_next_opening_is_the_first_working_instant(calendar: Calendar, instant: datetime) -> None:
    opening = calendar.next_opening(instant)
    assert opening >= instant and calendar.is_working(opening)
    assert calendar.between(instant, opening) == timedelta(0)
    assert calendar.is_working(instant) == (opening == instant)


ROUND_THE_CLOCK = [calendar_from_config(f"24x7 {zone}", {"timezone": zone, "hours": "24x7"})
                   for zone in ("UTC", "Europe/Amsterdam", "America/New_York", "America/Santiago")]


@pytest.mark.parametrize("calendar", ROUND_THE_CLOCK, ids=lambda c: c.name)
@examples
@given(start=instants, duration=durations, end=instants)
def test_24x7_sums_are_the_window_walks(calendar: Calendar, start: datetime, duration: timedelta,
                                         end: datetime) -> None:
    """A 24x7 calendar without holidays adds and subtracts plainly (Calendar._continuous):
    the same answers as walking its windows, across DST changes too."""
    walked = dataclasses.replace(calendar, extra_holidays=frozenset({date(2999, 1, 1)}))     # the general path
    assert calendar._continuous and not walked._continuous
    assert calendar.add(start, duration) == walked.add(start, duration) == start + duration
    assert calendar.between(start, end) == walked.between(start, end)
