"""SLA timers and deadlines (pure): pause/resume arithmetic, severity changes,
milestones, and a ticket's deadlines on real dates (weekends, Christmas, DST)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtriage.config.values import SlaSettings
from mailtriage.sla import calendar_from_config, deadlines
from mailtriage.sla.timers import FIRST_RESPONSE, NEXT_UPDATE, RESOLUTION, Timer, Timers

UTC = timezone.utc
AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")

CALENDARS = {
    "office": calendar_from_config("office", {"timezone": "Europe/Amsterdam",
                                              "hours": {"mon-fri": "08:00-20:00"}, "holidays": "NL"}),
    "always": calendar_from_config("always", {"timezone": "UTC", "hours": "24x7"}),
    "ams24": calendar_from_config("ams24", {"timezone": "Europe/Amsterdam", "hours": "24x7"}),
    "ny": calendar_from_config("ny", {"timezone": "America/New_York", "hours": {"mon-fri": "09:00-17:00"},
                                      "holidays": "US"}),
    "nights": calendar_from_config("nights", {"timezone": "America/New_York",
                                              "hours": {"mon-sun": "22:00-06:00"}}),
}
SLA = SlaSettings.model_validate({"warn_at": "80%", "targets": {
    "S1": {"first_response": "15m", "resolution": "1h", "calendar": "always"},
    "S2": {"first_response": "30m", "resolution": "2h", "calendar": "always", "next_update": "1h"},
    "S3": {"first_response": "1h", "resolution": "3h", "calendar": "office"},
    "S4": {"first_response": "4h", "resolution": "3d", "calendar": "office"},
}})


def ams(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)  # type: ignore[misc]


def nyc(*args: int) -> datetime:
    return datetime(*args, tzinfo=NYC)  # type: ignore[misc]


def opened(severity: str, at: datetime, sla: SlaSettings = SLA) -> Timers:
    return deadlines.settle(deadlines.start(at, severity, sla), "new", False, at, CALENDARS)


def due(timers: Timers, name: str) -> datetime | None:
    timer = timers.get(name)
    assert timer is not None
    return timer.when(1.0, CALENDARS)


def with_target(calendar: str, first: str, resolution: str) -> SlaSettings:
    targets = {s: {"first_response": first, "resolution": resolution, "calendar": calendar}
               for s in ("S1", "S2", "S3", "S4")}
    return SlaSettings.model_validate({"warn_at": "80%", "targets": targets})


# -- a ticket's deadlines on real dates -------------------------------------------

@pytest.mark.parametrize("calendar, opened_at, first, resolution, first_due, resolution_due", [
    # Friday-evening ticket in a 12x5 window: 30 minutes on Friday, the rest on Monday.
    ("office", ams(2026, 3, 6, 19, 30), "1h", "3h", ams(2026, 3, 9, 8, 30), ams(2026, 3, 9, 10, 30)),
    # Saturday: the timer starts at Monday's opening.
    ("office", ams(2026, 3, 7, 11, 0), "1h", "3d", ams(2026, 3, 9, 9, 0), ams(2026, 3, 16, 20, 0)),
    # Christmas 2026: Thursday 24 works, Friday 25 and Saturday 26 are holidays, then the weekend.
    ("office", ams(2026, 12, 24, 19, 30), "1h", "3h", ams(2026, 12, 28, 8, 30), ams(2026, 12, 28, 10, 30)),
    # Spring forward in Amsterdam (29 March 2026, 02:00 → 03:00) on a 24x7 timer: real hours count.
    ("ams24", ams(2026, 3, 28, 23, 0), "1h", "4h", ams(2026, 3, 29, 0, 0), ams(2026, 3, 29, 4, 0)),
    # Fall back in Amsterdam (25 October 2026, 03:00 → 02:00): the repeated hour counts once more.
    ("ams24", ams(2026, 10, 24, 23, 0), "1h", "4h", ams(2026, 10, 25, 0, 0),
     datetime(2026, 10, 25, 1, 0, tzinfo=UTC)),
    # New York office hours across spring forward (8 March 2026): Friday 16:00 EST → Monday 11:00 EDT.
    ("ny", nyc(2026, 3, 6, 16, 0), "2h", "3h", nyc(2026, 3, 9, 10, 0), nyc(2026, 3, 9, 11, 0)),
    # … and across fall back (1 November 2026).
    ("ny", nyc(2026, 10, 30, 16, 0), "2h", "3h", nyc(2026, 11, 2, 10, 0), nyc(2026, 11, 2, 11, 0)),
    # A night window over fall back in New York: Saturday 22:00 EDT → Sunday 06:00 EST is 9 real hours.
    ("nights", nyc(2026, 10, 31, 22, 0), "8h", "9h", datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
     nyc(2026, 11, 1, 6, 0)),
    # … and over spring forward: Saturday 22:00 EST → Sunday 06:00 EDT is 7 real hours.
    ("nights", nyc(2026, 3, 7, 22, 0), "7h", "8h", nyc(2026, 3, 8, 6, 0), nyc(2026, 3, 8, 23, 0)),
])
def test_deadlines_on_real_dates(calendar: str, opened_at: datetime, first: str, resolution: str,
                                 first_due: datetime, resolution_due: datetime) -> None:
    timers = opened("S3", opened_at, with_target(calendar, first, resolution))
    assert due(timers, FIRST_RESPONSE) == first_due
    assert due(timers, RESOLUTION) == resolution_due


def test_pending_over_a_weekend_costs_no_working_time() -> None:
    timers = opened("S3", ams(2026, 3, 6, 18, 0))                     # Friday 18:00; 1h/3h office
    timers = deadlines.settle(timers, "pending", False, ams(2026, 3, 6, 18, 30), CALENDARS)
    assert deadlines.milestones(timers, 0.8, CALENDARS) == []        # nothing to sweep while paused
    assert timers.timers[FIRST_RESPONSE].used(ams(2026, 3, 10, 12, 0), CALENDARS) == timedelta(minutes=30)
    timers = deadlines.settle(timers, "open", False, ams(2026, 3, 10, 12, 0), CALENDARS)   # Tuesday noon
    assert due(timers, FIRST_RESPONSE) == ams(2026, 3, 10, 12, 30)
    assert due(timers, RESOLUTION) == ams(2026, 3, 10, 14, 30)


def test_first_response_stops_its_timer_and_resolution_runs_on() -> None:
    timers = opened("S3", ams(2026, 3, 2, 9, 0))
    timers = deadlines.settle(timers, "open", True, ams(2026, 3, 2, 9, 40), CALENDARS)
    first = timers.timers[FIRST_RESPONSE]
    assert (first.state, first.outcome, first.used_before) == ("stopped", "met", timedelta(minutes=40))
    assert [m.key for m in deadlines.milestones(timers, 0.8, CALENDARS)] == [
        "resolution.warn", "resolution.due", "resolution.again"]


def test_resolving_stops_and_reopening_restarts_with_the_time_used() -> None:
    timers = opened("S3", ams(2026, 3, 2, 9, 0))
    timers = deadlines.settle(timers, "open", True, ams(2026, 3, 2, 9, 30), CALENDARS)
    timers = deadlines.settle(timers, "resolved", True, ams(2026, 3, 2, 11, 0), CALENDARS)
    resolution = timers.timers[RESOLUTION]
    assert (resolution.state, resolution.outcome) == ("stopped", "met")
    assert deadlines.state_of(timers, "resolved", ams(2026, 3, 2, 11, 0), 0.8, CALENDARS) == "met"
    timers = deadlines.settle(timers, "open", True, ams(2026, 3, 3, 9, 0), CALENDARS)  # reopened next day
    assert due(timers, RESOLUTION) == ams(2026, 3, 3, 10, 0)          # 2h used, 1h left
    assert deadlines.state_of(timers, "open", ams(2026, 3, 3, 9, 0), 0.8, CALENDARS) == "ok"


def test_closed_stops_everything() -> None:
    timers = opened("S3", ams(2026, 3, 2, 9, 0))
    timers = deadlines.settle(timers, "closed", False, ams(2026, 3, 2, 9, 30), CALENDARS)
    assert {c.state for c in timers.timers.values()} == {"stopped"}
    assert deadlines.next_deadline(timers, 0.8, CALENDARS) is None


def test_severity_change_keeps_the_working_time_used() -> None:
    timers = opened("S3", ams(2026, 3, 6, 19, 0))           # Friday 19:00, office hours
    # Raised to S1 (24x7) on Saturday: one office hour was used on Friday.
    timers = deadlines.change_severity(timers, "S1", ams(2026, 3, 7, 10, 0), SLA, CALENDARS)
    timers = deadlines.settle(timers, "open", False, ams(2026, 3, 7, 10, 0), CALENDARS)
    assert timers.timers[RESOLUTION].calendar == "always"
    assert due(timers, RESOLUTION) == ams(2026, 3, 7, 10, 0)          # 1h used of S1's 1h: due now
    assert due(timers, FIRST_RESPONSE) == ams(2026, 3, 7, 10, 0)
    # Lowered to S4 instead: 1h of 3d used, the rest in office hours from Monday.
    lowered = deadlines.change_severity(opened("S3", ams(2026, 3, 6, 19, 0)), "S4", ams(2026, 3, 7, 10, 0),
                                        SLA, CALENDARS)
    assert due(lowered, FIRST_RESPONSE) == ams(2026, 3, 9, 11, 0)      # 4h - 1h = 3h from Monday 08:00


def test_next_update_timer_runs_between_replies() -> None:
    timers = opened("S2", datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    assert timers.timers[NEXT_UPDATE].state == "idle"
    timers = deadlines.settle(timers, "open", True, datetime(2026, 3, 2, 9, 10, tzinfo=UTC), CALENDARS)
    assert due(timers, NEXT_UPDATE) == datetime(2026, 3, 2, 10, 10, tzinfo=UTC)
    again = timers.with_timer(timers.timers[NEXT_UPDATE].next_cycle(datetime(2026, 3, 2, 9, 50, tzinfo=UTC)))
    assert due(again, NEXT_UPDATE) == datetime(2026, 3, 2, 10, 50, tzinfo=UTC)
    assert "next_update.2.warn" in [m.key for m in deadlines.milestones(again, 0.8, CALENDARS)]


def test_milestones_and_states() -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    timers = opened("S1", start)
    keys = [(m.key, m.at - start) for m in deadlines.milestones(timers, 0.8, CALENDARS)]
    assert keys == [("first_response.warn", timedelta(minutes=12)), ("first_response.due", timedelta(minutes=15)),
                    ("resolution.warn", timedelta(minutes=48)), ("resolution.due", timedelta(hours=1)),
                    ("resolution.again", timedelta(hours=2))]
    assert deadlines.state_of(timers, "new", start, 0.8, CALENDARS) == "ok"
    assert deadlines.state_of(timers, "new", start + timedelta(minutes=13), 0.8, CALENDARS) == "warning"
    assert deadlines.state_of(timers, "new", start + timedelta(minutes=15), 0.8, CALENDARS) == "breached"
    done = timers.mark_done("first_response.warn")
    assert deadlines.milestones(done, 0.8, CALENDARS)[0].key == "first_response.due"
    assert deadlines.state_of(done, "new", start + timedelta(minutes=13), 0.8, CALENDARS) == "warning"
    paused = deadlines.settle(timers, "pending", False, start + timedelta(minutes=5), CALENDARS)
    assert deadlines.state_of(paused, "pending", start + timedelta(hours=5), 0.8, CALENDARS) == "paused"
    late = deadlines.settle(timers, "resolved", True, start + timedelta(hours=3), CALENDARS)
    assert deadlines.state_of(late, "resolved", start + timedelta(hours=3), 0.8, CALENDARS) == "breached"


# -- properties ---------------------------------------------------------------------

BASE = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(0, 400 * 24 * 60).map(lambda m: BASE + timedelta(minutes=m))
steps = st.lists(st.integers(1, 6 * 24 * 60), min_size=1, max_size=8)
calendar_names = st.sampled_from(["office", "ny", "nights", "ams24"])


@settings(max_examples=150, deadline=None)
@given(calendar_names, instants, steps, st.integers(1, 40 * 60))
def test_pauses_add_no_working_time(name: str, start: datetime, gaps: list[int], target_minutes: int) -> None:
    """Alternate running and paused stretches: used time is the working time of
    the running stretches only, and the deadline is where that sum reaches the target."""
    calendar = CALENDARS[name]
    timer = Timer(RESOLUTION, timedelta(minutes=target_minutes), name).run(start)
    at, running, expected = start, True, timedelta(0)
    for gap in gaps:
        later = at + timedelta(minutes=gap)
        if running:
            expected += calendar.between(at, later)
            timer = timer.halt(later, CALENDARS, "paused")
        else:
            timer = timer.run(later)
        at, running = later, not running
    assert timer.used(at, CALENDARS) == expected
    timer = timer.halt(at, CALENDARS, "paused").run(at)
    deadline = timer.when(1.0, CALENDARS)
    assert deadline is not None
    if expected >= timer.target:
        assert deadline == at
    else:
        assert timer.used(deadline, CALENDARS) == timer.target
        assert calendar.is_working(deadline - timedelta(microseconds=1)) or deadline == at


@settings(max_examples=100, deadline=None)
@given(instants, st.integers(0, 3 * 24 * 60), st.integers(1, 30 * 24 * 60), st.integers(1, 3 * 24 * 60))
def test_on_24x7_a_pause_moves_the_deadline_by_its_length(start: datetime, run_before: int, pause: int,
                                                          target: int) -> None:
    timer = Timer(RESOLUTION, timedelta(minutes=target), "always").run(start)
    unpaused = timer.when(1.0, CALENDARS)
    assert unpaused is not None
    paused_at = start + timedelta(minutes=min(run_before, target))
    resumed = timer.halt(paused_at, CALENDARS, "paused").run(paused_at + timedelta(minutes=pause))
    assert resumed.when(1.0, CALENDARS) == unpaused + timedelta(minutes=pause)


@settings(max_examples=100, deadline=None)
@given(calendar_names, instants, st.integers(0, 10 * 24 * 60), st.integers(0, 10 * 24 * 60))
def test_retargeting_to_the_same_target_changes_nothing(name: str, start: datetime, at: int, target: int) -> None:
    timer = Timer(FIRST_RESPONSE, timedelta(minutes=target), name).run(start)
    same = timer.retarget(timer.target, name, start + timedelta(minutes=at), CALENDARS)
    assert same.when(1.0, CALENDARS) == timer.when(1.0, CALENDARS) or \
        same.when(1.0, CALENDARS) == start + timedelta(minutes=at)     # already used up: due at the change


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["S1", "S2", "S3", "S4"]), instants,
       st.lists(st.sampled_from(["new", "open", "pending", "resolved", "closed"]), max_size=6),
       st.lists(st.integers(0, 3 * 24 * 60), min_size=6, max_size=6), st.booleans())
def test_timers_round_trip_through_json_and_never_go_backwards(severity: str, start: datetime, statuses: list[str],
                                                               gaps: list[int], responded: bool) -> None:
    timers = opened(severity, start)
    at = start
    previous = timedelta(0)
    for status, gap in zip(statuses, gaps):
        at += timedelta(minutes=gap)
        timers = deadlines.settle(timers, status, responded, at, CALENDARS)
        used = timers.timers[RESOLUTION].used(at, CALENDARS)
        assert used >= previous
        previous = used
    assert Timers.from_json(timers.to_json()) == timers
    nxt = deadlines.next_deadline(timers, 0.8, CALENDARS)
    if nxt is not None:
        assert any(c.state == "running" for c in timers.timers.values())
