"""The daemon's scheduler, restarts, backoff and lock — pure, on a hand-moved clock."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

import pytest

from mailtriage.backoff import Backoff, Outage
from mailtriage.clock import FixedClock
from mailtriage.errors import AlreadyRunning
from mailtriage.daemon.scheduler import Scheduler, supervise
from mailtriage.store.lock import DaemonLock, lock_for, sqlite_file

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class Ticks:
    """A monotonic clock that tests move by hand."""

    def __init__(self) -> None:
        self.value = 100.0

    def __call__(self) -> float:
        return self.value


def make() -> tuple[Scheduler, Ticks]:
    ticks = Ticks()
    return Scheduler(FixedClock(NOW), monotonic=ticks, restart=Backoff(first=1, cap=8, jitter=0),
                     max_failures=3), ticks


def test_jobs_run_when_due_with_the_clock_reading():
    scheduler, ticks = make()
    seen: list[tuple[str, datetime]] = []
    scheduler.add("a", 5, lambda now: seen.append(("a", now)))
    scheduler.add("b", 30, lambda now: seen.append(("b", now)), delay=30)
    assert scheduler.run_pending() == 5
    assert seen == [("a", NOW)]
    ticks.value += 5
    scheduler.run_pending()
    ticks.value += 25
    scheduler.run_pending()
    assert [name for name, _ in seen] == ["a", "a", "a", "b"]     # a at 100, 105, 130; b at 130


def test_trigger_runs_a_job_now_even_from_inside_itself():
    scheduler, ticks = make()
    runs: list[int] = []

    def job(_now: datetime) -> None:
        runs.append(1)
        if len(runs) < 3:
            scheduler.trigger("outbox")        # more to send: go on at once

    scheduler.add("outbox", 60, job)
    assert scheduler.run_pending() == 0       # triggered again during its run
    scheduler.run_pending()
    assert scheduler.run_pending() == 60
    assert len(runs) == 3
    scheduler.trigger("outbox")
    scheduler.run_pending()
    assert len(runs) == 4


def test_run_in_brings_a_job_forward_but_never_later():
    scheduler, ticks = make()
    runs: list[float] = []

    def job(_now: datetime) -> None:
        runs.append(ticks.value)
        if len(runs) == 1:
            scheduler.run_in("outbox", 0.5)      # a deferred row is due in half a second
            scheduler.run_in("outbox", 120)      # a later wish does not push it back

    scheduler.add("outbox", 5, job)
    assert scheduler.run_pending() == 0.5
    ticks.value += 0.5
    assert scheduler.run_pending() == 5
    assert runs == [100.0, 100.5]


def test_a_crashing_job_is_restarted_with_backoff_then_given_up(caplog):
    scheduler, ticks = make()
    calls: list[float] = []

    def broken(_now: datetime) -> None:
        calls.append(ticks.value)
        raise RuntimeError("boom")

    scheduler.add("sla", 30, broken)
    with caplog.at_level(logging.ERROR):
        assert scheduler.run_pending() == 1        # first restart after 1 s
        ticks.value += 1
        assert scheduler.run_pending() == 2        # then 2 s
        ticks.value += 2
        scheduler.run_pending()                     # third crash in a row: given up
        ticks.value += 1000
        scheduler.run_pending()
        scheduler.trigger("sla")
        scheduler.run_pending()
    assert calls == [100.0, 101.0, 103.0]
    assert scheduler.job("sla").dead
    assert any(r.levelno == logging.CRITICAL and "sla" in r.getMessage() for r in caplog.records)


def test_a_job_that_recovers_has_its_crash_count_reset():
    scheduler, ticks = make()
    outcomes = iter([RuntimeError("once"), None, RuntimeError("twice"), RuntimeError("thrice"), None])

    def flaky(_now: datetime) -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    scheduler.add("outbox", 5, flaky)
    for _ in range(5):
        scheduler.run_pending()
        ticks.value += 10
    assert not scheduler.job("outbox").dead and scheduler.job("outbox").failures == 0


def test_supervise_restarts_a_crashed_thread_boundedly():
    stop = threading.Event()
    starts: list[int] = []

    def target() -> None:
        starts.append(1)
        raise RuntimeError("crash")

    supervise("watcher", target, stop, restart=Backoff(first=0.001, cap=0.001), max_failures=4)
    assert len(starts) == 4

    starts.clear()
    supervise("watcher", lambda: starts.append(1), stop)        # returns normally: not restarted
    assert starts == [1]


def test_backoff_doubles_up_to_the_cap_with_jitter_below_it():
    backoff = Backoff(first=1, cap=60, jitter=0.5)
    assert [backoff.delay(n, rng=lambda: 0.0) for n in (1, 2, 3, 7, 20)] == [1, 2, 4, 60, 60]
    assert backoff.delay(3, rng=lambda: 1.0) == 2.0


def test_an_outage_is_logged_when_it_starts_and_when_it_ends(caplog):
    log = logging.getLogger("test.outage")
    ticks = Ticks()
    outage = Outage("imap support/INBOX", log, Backoff(first=1, cap=4, jitter=0), monotonic=ticks)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        delays = [outage.failed(ConnectionRefusedError(111, "Connection refused")) for _ in range(5)]
        ticks.value += 7
        outage.ended()
        outage.ended()
    assert delays == [1, 2, 4, 4, 4]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "Connection refused" in messages[0] and "retrying" in messages[0]
    assert "working again after 7.0 s (5 failed attempts)" in messages[1]


def test_the_daemon_lock_keeps_a_second_holder_out(tmp_path):
    database = tmp_path / "mailtriage.db"
    first = DaemonLock(database)
    first.acquire()
    try:
        with pytest.raises(AlreadyRunning, match="already running"):
            DaemonLock(database).acquire()
    finally:
        first.release()
    again = DaemonLock(database)
    again.acquire()
    again.release()


def test_only_sqlite_files_need_the_lock(tmp_path):
    assert sqlite_file(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db"
    assert sqlite_file("sqlite:///:memory:") is None
    assert lock_for("postgresql+psycopg://u@localhost/mt") is None
