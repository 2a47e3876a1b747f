"""The daemon's scheduler, restarts, backoff and lock — pure, on a hand-moved clock."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import schedule

from mailtriage.backoff import Backoff, Outage
from mailtriage.clock import FixedClock, ManualClock
from mailtriage.errors import AlreadyRunning
from mailtriage.daemon.scheduler import Scheduler, supervise
from mailtriage.store.lock import DaemonLock, lock_for, sqlite_file

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
WALL = datetime(2026, 3, 2, 10, 0)        # what schedule reads: naive local time


class Ticks:
    """A monotonic clock that tests move by hand; `wall()` is the wall clock
    `schedule` reads, which moves with it unless a test steps it."""

    def __init__(self) -> None:
        self.value = 100.0
        self.step = 0.0                    # seconds the wall clock was set forward (or back)

    def __call__(self) -> float:
        return self.value

    def wall(self) -> datetime:
        return WALL + timedelta(seconds=self.value + self.step)


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Ticks:
    """`schedule` reads `datetime.datetime.now()` and takes no clock (its maintainers
    declined one, dbader/schedule#362): for this test its reading is the hand-moved
    one, the way schedule's own tests do it. Only schedule's name is replaced."""
    ticks = Ticks()

    class Reading(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return ticks.wall()

    monkeypatch.setattr(schedule, "datetime", SimpleNamespace(datetime=Reading, timedelta=timedelta))
    return ticks


def make(ticks: Ticks, *, max_failures: int = 3, clock: FixedClock = FixedClock(NOW)) -> Scheduler:
    return Scheduler(clock, monotonic=ticks, wall=ticks.wall, restart=Backoff(first=1, cap=8, jitter=0),
                     max_failures=max_failures)


def test_jobs_run_when_due_with_the_clock_reading(ticks):
    scheduler = make(ticks)
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


def test_trigger_runs_a_job_now_even_from_inside_itself(ticks):
    scheduler = make(ticks)
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


def test_run_in_brings_a_job_forward_but_never_later(ticks):
    scheduler = make(ticks)
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


def test_a_crashing_job_is_restarted_with_backoff_then_given_up(ticks, caplog):
    scheduler = make(ticks)
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


def test_a_job_that_recovers_has_its_crash_count_reset(ticks):
    scheduler = make(ticks)
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


def test_the_cadence_keeps_the_intervals_and_restarts_a_crashing_job_boundedly(ticks, caplog):
    """Two minutes of the daemon's loop on a hand-moved clock: sleep what
    run_pending() says (at most TICK), run what is due."""
    clock = ManualClock(NOW)
    scheduler = make(ticks, max_failures=4, clock=clock)
    runs: dict[str, list[float]] = {"outbox": [], "sla": []}

    def outbox(now: datetime) -> None:
        assert now == clock.now()                      # the daemon's Clock, not schedule's reading
        runs["outbox"].append(ticks.value - 100)

    def sla(_now: datetime) -> None:
        runs["sla"].append(ticks.value - 100)
        raise RuntimeError("sweep broken")

    scheduler.add("outbox", 5, outbox)
    scheduler.add("sla", 30, sla)
    with caplog.at_level(logging.ERROR):
        while ticks.value < 220:
            step = min(scheduler.run_pending(), 0.5)   # the daemon's TICK
            ticks.value += step
            clock.advance(timedelta(seconds=step))
    assert runs["outbox"] == [float(t) for t in range(0, 120, 5)]
    assert runs["sla"] == [0, 1, 3, 7]                 # restarted after 1, 2, 4 s; the 4th crash gives up
    assert scheduler.job("sla").dead and not scheduler.job("outbox").dead
    assert [r.levelname for r in caplog.records] == ["ERROR"] * 3 + ["CRITICAL"]


def test_a_wall_clock_step_back_does_not_hold_the_jobs_back(ticks, caplog):
    scheduler = make(ticks)
    runs: list[float] = []
    scheduler.add("outbox", 5, lambda _now: runs.append(ticks.value))
    scheduler.run_pending()
    ticks.value += 5
    ticks.step = -3600.0                               # an hour back (NTP, or summer time ending)
    with caplog.at_level(logging.WARNING):
        assert scheduler.run_pending() == 5
    ticks.value += 5
    scheduler.run_pending()
    assert runs == [100, 105, 110]
    assert "the wall clock went back 3600.0 s" in caplog.text


def test_a_wall_clock_step_forward_runs_a_job_at_most_once_early(ticks):
    scheduler = make(ticks)
    runs: list[float] = []
    scheduler.add("housekeeping", 600, lambda _now: runs.append(ticks.value))
    scheduler.run_pending()
    ticks.step = 3600.0
    for _ in range(3):
        ticks.value += 1
        scheduler.run_pending()
    assert runs == [100, 101]                          # once early, then on its interval again
    assert scheduler.run_pending() == 600 - 2          # 600 s after the early run


def test_a_trigger_from_another_thread_ends_the_wait_at_once(ticks):
    scheduler = make(ticks)
    runs: list[datetime] = []
    scheduler.add("outbox", 60, runs.append, delay=60)
    assert scheduler.run_pending() == 60
    threading.Timer(0.05, scheduler.trigger, args=("outbox",)).start()    # new mail, in the listener
    started = time.monotonic()
    while time.monotonic() - started < 10:                                # the daemon's loop
        delay = scheduler.run_pending()
        if runs:
            break
        scheduler.wait(delay)
    assert runs == [NOW]
    assert time.monotonic() - started < 1             # not the 60 s the job's schedule said


def test_an_interval_that_is_not_positive_runs_every_second(ticks):
    scheduler = make(ticks)
    runs: list[datetime] = []
    scheduler.add("imap-poll:support", 0, runs.append)    # `poll_interval: 0s`; schedule would loop for ever
    assert scheduler.run_pending() == 1
    assert len(runs) == 1


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
