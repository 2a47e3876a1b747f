"""The alert policy (health.state): one mail when a component has failed for
`after`, one when it recovers, nothing in between, and no repeat after a
restart (the state, alert included, is what the heartbeat row keeps)."""

from __future__ import annotations

from dataclasses import astuple
from datetime import datetime, timedelta, timezone

from mailtriage.health.state import State

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
AFTER = timedelta(minutes=5)


def run(state: State, events: list[tuple[int, str | None]]) -> tuple[State, list[tuple[int, str]]]:
    """Feed (minute, error or None for a success) events; decide after each, as the health job does."""
    mails = []
    for minute, error in events:
        now = T0 + timedelta(minutes=minute)
        state = state.failed(error, now) if error else state.succeeded(now)
        action = state.alert_due(now, AFTER)
        if action is not None:
            mails.append((minute, action))
            state = state.alerted(action, now)
    return state, mails


def test_a_failure_shorter_than_after_sends_nothing():
    _, mails = run(State("mailbox:support"), [(0, None), (1, "refused"), (4, "refused"), (5.5, None)])
    assert mails == []


def test_a_failure_of_after_sends_one_alert_and_one_recovery_and_nothing_between():
    events = [(0, None), (1, "refused"), (3, "refused"), (6, "refused"), (7, "auth failed"),
              (30, "refused"), (31, None), (32, None)]
    state, mails = run(State("relay"), events)
    assert mails == [(6, "alert"), (31, "recovered")]
    assert state.ok and state.alerted_at is None and state.failing_since is None


def test_the_alert_counts_from_the_first_failure_not_the_latest_error():
    state, _ = run(State("relay"), [(1, "refused"), (2, "timeout")])
    assert state.failing_since == T0 + timedelta(minutes=1)
    assert state.last_error == "timeout" and state.last_error_at == T0 + timedelta(minutes=2)
    assert state.alert_due(T0 + timedelta(minutes=5, seconds=59), AFTER) is None
    assert state.alert_due(T0 + timedelta(minutes=6), AFTER) == "alert"


def test_a_restart_between_alert_and_recovery_neither_repeats_nor_forgets():
    state, mails = run(State("database"), [(0, "gone"), (5, "gone")])
    assert mails == [(5, "alert")]
    restarted = State(*astuple(state))               # what the heartbeat row gives the next daemon
    state, mails = run(restarted, [(6, "gone"), (20, "gone")])
    assert mails == []
    _, mails = run(state, [(21, None)])
    assert mails == [(21, "recovered")]


def test_a_component_never_tried_is_unknown_and_never_alerts():
    state = State("oauth2:support")
    assert state.status == "unknown" and state.alert_due(T0 + timedelta(days=1), AFTER) is None


def test_a_new_failure_after_a_recovery_is_a_new_outage():
    _, mails = run(State("relay"), [(0, "x"), (5, "x"), (6, None), (7, "y"), (11, "y"), (12, "y")])
    assert mails == [(5, "alert"), (6, "recovered"), (12, "alert")]


def test_an_error_is_kept_on_one_line_and_bounded():
    state = State("relay").failed("line one\r\nBcc: x@evil.example\n" + "z" * 2000, T0)
    assert "\n" not in (state.last_error or "") and len(state.last_error or "") == 500
