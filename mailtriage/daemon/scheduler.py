"""The daemon's one scheduler: periodic jobs, each a `run_once(now)`.

The daemon's main thread runs every job from here (outbox, housekeeping, the
SLA sweep, the poll ticks of IMAP mailboxes); the CLI and the tests call the
same `run_once(now)` functions directly.

The cadence is the `schedule` package's: one `schedule.Scheduler` instance
(no module-level job list) holds the jobs, `every(n).seconds` and tagged with
the job's name; its `run_pending()` runs the due ones and its `idle_seconds`
says how long the loop may sleep. Around it, this wrapper adds what
`schedule` leaves out (README.md, "The cadence", has the measurements):

- `now`: a job is called with the daemon's Clock reading, so `--now` and the
  tests' clocks reach it; `schedule` only decides *when*.
- failures: `schedule` lets a job's exception out of `run_pending()` and
  leaves the job due, to run again at every pass. Here a job that raises is
  restarted after a backoff, and given up after MAX_FAILURES crashes in a
  row, like Mailman's master.py stops restarting a runner that keeps crashing.
- `trigger`/`run_in`: the SMTP listener and the IMAP watchers ask, from their
  own threads, for a job to run now (new mail: the acknowledgement goes out
  now, not at the next tick). `schedule` is not thread-safe and sets a job's
  next run after the run, which would drop a trigger made during it, so the
  wishes wait in a locked table that the main thread applies around each pass.
- `after_job`: called after every job (the daemon pings systemd's watchdog
  there, so a pass of several long jobs is not mistaken for a hung daemon).
- clock steps: `schedule` reads the naive local wall clock, so a step back
  (NTP, an operator, the end of summer time in a local zone) would hold every
  job back by the size of the step. Each pass compares the wall clock's
  progress with `time.monotonic()`'s and moves every job earlier by a step
  back; a step forward at worst runs each job once early.

`supervise()` does the restart half for the long-running threads (IMAP watchers).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import schedule

from mailtriage.backoff import Backoff
from mailtriage.clock import Clock

log = logging.getLogger(__name__)

MAX_FAILURES = 5                       # crashes in a row before a job is given up
RESTART = Backoff(first=1.0, cap=60.0)
STABLE = 300.0                         # a thread that ran this long has its crash count reset
STEP_BACK = 1.0                        # seconds the wall clock may fall behind the monotonic one unnoticed
FLOOR = 1.0                            # the interval used for one that is not positive
IDLE = 3600.0                          # the wait reported when there is no job at all


@dataclass
class Job:
    """A job's name, work and crash record; when it runs next is `schedule`'s."""

    name: str
    interval: float                    # seconds between runs
    run_once: Callable[[datetime], object]
    entry: schedule.Job | None = field(default=None, repr=False)   # None once given up
    failures: int = 0                  # consecutive crashes
    dead: bool = False


def local_now() -> datetime:
    """The reading `schedule` itself takes: naive local wall-clock time."""
    return datetime.now()  # clock-ok: schedule's own time base, compared with monotonic below


class Scheduler:
    """add/remove/run_pending belong to the thread that runs the loop;
    trigger/run_in/wake may be called from any thread."""

    def __init__(self, clock: Clock, *, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = local_now,
                 restart: Backoff = RESTART, max_failures: int = MAX_FAILURES,
                 after_job: Callable[[], None] | None = None):
        self.clock, self.monotonic, self.wall = clock, monotonic, wall
        self.after_job = after_job
        self.restart, self.max_failures = restart, max_failures
        self._cadence = schedule.Scheduler()
        self._jobs: dict[str, Job] = {}
        self._soon: dict[str, float] = {}       # trigger/run_in: name → monotonic deadline
        self._restarts: dict[str, float] = {}   # crashed in this pass: name → seconds to wait
        self._lock = threading.Lock()           # guards _jobs, _soon and Job.dead
        self._wake = threading.Event()
        self._last: tuple[datetime, float] | None = None

    def add(self, name: str, interval: float, run_once: Callable[[datetime], object], *,
            delay: float = 0.0) -> None:
        """Add (or replace) a job; it first runs after `delay` seconds."""
        if interval <= 0:                 # schedule would loop for ever computing the next run
            log.warning("job %s: interval %g s is not positive; running it every %g s", name,
                        interval, FLOOR)
            interval = FLOOR
        self.remove(name)
        job = Job(name, interval, run_once)
        # schedule's hint says int, but it passes the number to timedelta(seconds=…): any works
        every = self._cadence.every(interval)  # type: ignore[arg-type]
        job.entry = every.seconds.do(self._run, job).tag(name)
        job.entry.next_run = self._now() + timedelta(seconds=delay)   # not one interval away
        with self._lock:
            self._jobs[name] = job
        self._wake.set()

    def remove(self, name: str) -> None:
        self._cadence.clear(name)
        with self._lock:
            self._jobs.pop(name, None)
            self._soon.pop(name, None)
        self._restarts.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._jobs)

    def job(self, name: str) -> Job | None:
        with self._lock:
            return self._jobs.get(name)

    def trigger(self, name: str) -> None:
        """Run the job as soon as possible (thread-safe; a job may trigger itself)."""
        self.run_in(name, 0.0)

    def run_in(self, name: str, seconds: float) -> None:
        """Run the job within `seconds` (earlier than its interval would)."""
        with self._lock:
            job = self._jobs.get(name)
            if job is None or job.dead:
                return
            at = self.monotonic() + max(seconds, 0.0)
            self._soon[name] = min(self._soon.get(name, at), at)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def run_pending(self) -> float:
        """Run each job that is due once; returns the seconds until the next one is due."""
        self._apply()
        self._cadence.run_pending()
        self._apply()                     # after schedule set the next runs: restarts, triggers
        idle = self._cadence.idle_seconds
        return IDLE if idle is None else max(0.0, idle)

    def wait(self, timeout: float) -> None:
        """Sleep until `timeout` passes or someone calls trigger()/wake()."""
        self._wake.wait(timeout)
        self._wake.clear()

    # ------------------------------------------------------------ around schedule
    def _run(self, job: Job) -> object:
        """What `schedule` calls: the job with the Clock's `now`, its crash handled here."""
        try:
            job.run_once(self.clock.now())
        except Exception:  # noqa: BLE001 - a crashing job must not take the daemon down
            return self._crashed(job)
        finally:
            if self.after_job is not None:
                self.after_job()
        job.failures = 0
        return None

    def _crashed(self, job: Job) -> object:
        with self._lock:
            job.failures += 1
            self._soon.pop(job.name, None)        # the backoff wins over a trigger made during the run
            if job.failures >= self.max_failures:
                job.dead, job.entry = True, None
        if job.dead:
            log.critical("job %s crashed %d times in a row; not restarting it "
                         "(SIGHUP or a restart brings it back)", job.name, job.failures, exc_info=True)
            return schedule.CancelJob
        delay = self.restart.delay(job.failures)
        self._restarts[job.name] = delay          # applied once schedule has set its next run
        log.error("job %s crashed (%d/%d); restarting in %.1f s", job.name, job.failures,
                  self.max_failures, delay, exc_info=True)
        return None

    def _apply(self) -> None:
        """Restarts set a job's next run; triggers may only bring it earlier."""
        now, mono = self._now(), self.monotonic()
        restarts, self._restarts = self._restarts, {}
        with self._lock:
            soon, self._soon = self._soon, {}
            entries = {name: job.entry for name, job in self._jobs.items() if job.entry is not None}
        for name, delay in restarts.items():
            if name in entries:
                entries[name].next_run = now + timedelta(seconds=delay)
        for name, at in soon.items():
            if name in entries:
                entry, wished = entries[name], now + timedelta(seconds=at - mono)
                entry.next_run = wished if entry.next_run is None else min(entry.next_run, wished)

    def _now(self) -> datetime:
        """`schedule`'s time; a step back of the wall clock first moves every job as much earlier."""
        wall, mono = self.wall(), self.monotonic()
        if self._last is not None:
            step = (wall - self._last[0]).total_seconds() - (mono - self._last[1])
            if step < -STEP_BACK:
                for entry in self._cadence.jobs:
                    if entry.next_run is not None:
                        entry.next_run += timedelta(seconds=step)
                log.warning("the wall clock went back %.1f s; every job moved as much earlier", -step)
        self._last = (wall, mono)
        return wall


def supervise(name: str, target: Callable[[], None], stop: threading.Event, *,
              restart: Backoff = RESTART, max_failures: int = MAX_FAILURES,
              monotonic: Callable[[], float] = time.monotonic) -> None:
    """Run a long-running `target` until it returns or `stop` is set; restart it
    after a crash with backoff, at most `max_failures` crashes in a row."""
    failures = 0
    while not stop.is_set():
        started = monotonic()
        try:
            target()
            return
        except Exception:  # noqa: BLE001 - restart, boundedly
            if monotonic() - started > STABLE:
                failures = 0
            failures += 1
            if failures >= max_failures:
                log.critical("%s crashed %d times in a row; not restarting it "
                             "(SIGHUP or a restart brings it back)", name, failures, exc_info=True)
                return
            delay = restart.delay(failures)
            log.error("%s crashed (%d/%d); restarting in %.1f s", name, failures, max_failures, delay,
                      exc_info=True)
            stop.wait(delay)
