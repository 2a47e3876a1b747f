"""When the daily digest is due (sla/digest.py, pure): the `office` calendar
of the example config, Europe/Amsterdam, Dutch public holidays."""

from __future__ import annotations

from datetime import date

from mailtriage.clock import parse_instant
from mailtriage.config.values import Digest
from mailtriage.sla import digest
from mailtriage.sla.calendar import calendar_from_config

OFFICE = calendar_from_config("office", {"timezone": "Europe/Amsterdam", "hours": {"mon-fri": "08:00-20:00"},
                                         "holidays": "NL"})
RULE = Digest(to=["lead@example.test"], at="08:00", calendar="office")


def due(at: str) -> str | None:
    day = digest.due_day(RULE, OFFICE, parse_instant(at))
    return day.isoformat() if day else None


def test_due_from_eight_local_time_until_the_day_ends():
    assert due("2026-03-02T06:59:59+00:00") is None                   # Monday 07:59:59 in Amsterdam
    assert due("2026-03-02T07:00:00+00:00") == "2026-03-02"
    assert due("2026-03-02T22:59:00+00:00") == "2026-03-02"           # late, the same day: still due
    assert due("2026-03-02T23:00:00+00:00") is None                   # Tuesday 00:00: before eight


def test_eight_oclock_follows_summer_time():
    assert due("2026-03-30T05:59:00+00:00") is None                   # 07:59 CEST
    assert due("2026-03-30T06:00:00+00:00") == "2026-03-30"           # 08:00 CEST


def test_none_on_a_weekend_or_a_public_holiday():
    assert due("2026-03-07T09:00:00+00:00") is None                   # a Saturday
    assert due("2026-03-29T09:00:00+00:00") is None                   # a Sunday
    assert due("2026-04-27T09:00:00+00:00") is None                   # King's Day, a Monday
    assert digest.due_day(RULE, OFFICE, parse_instant("2026-04-27T09:00:00+00:00"), any_time=True) is None


def test_breaches_are_counted_from_the_previous_working_day():
    assert digest.previous_working_day(OFFICE, date(2026, 3, 3)) == date(2026, 3, 2)     # Tuesday: Monday
    assert digest.previous_working_day(OFFICE, date(2026, 3, 2)) == date(2026, 2, 27)    # Monday: Friday
    assert digest.previous_working_day(OFFICE, date(2026, 4, 28)) == date(2026, 4, 24)   # after King's Day


def test_an_unquoted_time_is_refused_with_the_fix():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="write the time of day in quotes"):
        Digest(to=["lead@example.test"], at=630, calendar="office")     # YAML's reading of at: 10:30
    assert Digest(to=["lead@example.test"], at="7:05", calendar="office").at.isoformat() == "07:05:00"
