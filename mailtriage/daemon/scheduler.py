"""The daemon's one scheduler: periodic jobs, each a `run_once(now)`.

The daemon's main thread runs every job from here (outbox, housekeeping, the
SLA sweep, the poll ticks of IMAP mailboxes); the CLI and the tests call the
same `run_once(now)` functions directly.

Why not the `schedule` package: it reads the wall clock (a clock step or a
DST change moves every job), knows nothing about failures, and cannot run a
job "now" from another thread. This one measures intervals on a monotonic
clock, runs a job at once when asked (`trigger`: new mail means send the
acknowledgement now, not at the next tick), and restarts a job that raised
after a backoff, a bounded number of times in a row — like Mailman's
master.py, which stops restarting a runner that keeps crashing.
`supervise()` does the same for the long-running threads (IMAP watchers).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from mailtriage.backoff import Backoff
from mailtriage.clock import Clock

log = logging.getLogger(__name__)

MAX_FAILURES = 5                       # crashes in a row before a job is given up
RESTART = Backoff(first=1.0, cap=60.0)
STABLE = 300.0                         # a thread that ran this long has its crash count reset


@dataclass
class Job:
    name: str
    interval: float                    # seconds between runs
    run_once: Callable[[datetime], object]
    next_at: float
    failures: int = 0                  # consecutive crashes
    dead: bool = False


class Scheduler:
    def __init__(self, clock: Clock, *, monotonic: Callable[[], float] = time.monotonic,
                 restart: Backoff = RESTART, max_failures: int = MAX_FAILURES):
        self.clock, self.monotonic = clock, monotonic
        self.restart, self.max_failures = restart, max_failures
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def add(self, name: str, interval: float, run_once: Callable[[datetime], object], *,
            delay: float = 0.0) -> None:
        """Add (or replace) a job; it first runs after `delay` seconds."""
        with self._lock:
            self._jobs[name] = Job(name, interval, run_once, self.monotonic() + delay)
        self._wake.set()

    def remove(self, name: str) -> None:
        with self._lock:
            self._jobs.pop(name, None)

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
            job.next_at = min(job.next_at, self.monotonic() + max(seconds, 0.0))
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def run_pending(self) -> float:
        """Run each job that is due once; returns the seconds until the next one is due."""
        with self._lock:
            now = self.monotonic()
            due = sorted((j for j in self._jobs.values() if not j.dead and j.next_at <= now),
                         key=lambda j: j.next_at)
            for job in due:
                job.next_at = now + job.interval    # a trigger during the run moves it earlier
        for job in due:
            self._run(job)
        with self._lock:
            pending = [j.next_at for j in self._jobs.values() if not j.dead]
            return max(0.0, min(pending) - self.monotonic()) if pending else 3600.0

    def wait(self, timeout: float) -> None:
        """Sleep until `timeout` passes or someone calls trigger()/wake()."""
        self._wake.wait(timeout)
        self._wake.clear()

    def _run(self, job: Job) -> None:
        try:
            job.run_once(self.clock.now())
        except Exception:  # noqa: BLE001 - a crashing job must not take the daemon down
            with self._lock:
                job.failures += 1
                if job.failures >= self.max_failures:
                    job.dead = True
                    log.critical("job %s crashed %d times in a row; not restarting it "
                                 "(SIGHUP or a restart brings it back)", job.name, job.failures,
                                 exc_info=True)
                    return
                delay = self.restart.delay(job.failures)
                job.next_at = self.monotonic() + delay
            log.error("job %s crashed (%d/%d); restarting in %.1f s", job.name, job.failures,
                      self.max_failures, delay, exc_info=True)
            return
        with self._lock:
            job.failures = 0


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
