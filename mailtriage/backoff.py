"""Waiting after failures, for every retry in mailtriage: exponential
backoff, with jitter where several daemons reconnect to one server (IMAP,
the daemon's restarts) and without it where the next try is a stored time
(the outbox's `due_at`); and an outage that is logged once when it starts
and once when it ends — never a line per retry, never a tight loop.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable


@dataclass(frozen=True)
class Backoff:
    """first, 2×first, 4×first … capped (in seconds); each delay shortened by
    a random share up to `jitter`, so daemons that lost the same server do not
    return in step. `jitter=0` is a fixed schedule."""

    first: float = 1.0
    cap: float = 300.0
    jitter: float = 0.5

    @classmethod
    def fixed(cls, first: timedelta, cap: timedelta) -> Backoff:
        """The same doubling without jitter: retry times an operator reads
        in `outbox list` and tests can name exactly."""
        return cls(first.total_seconds(), cap.total_seconds(), jitter=0.0)

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the `failures`-th failure in a row."""
        base = min(self.cap, self.first * 2 ** max(failures - 1, 0))
        return base * (1.0 - self.jitter * rng()) if self.jitter else base

    def after(self, failures: int, rng: Callable[[], float] = random.random) -> timedelta:
        """`delay()` as a timedelta, to add to a `now`."""
        return timedelta(seconds=self.delay(failures, rng))


class Outage:
    """Counts consecutive failures of one thing (an IMAP server, the store,
    the outgoing relay). A caller that names each failure's `cause` ("connection
    refused", "authentication failed") gets one more WARNING when it changes:
    the operator who fixed the first problem learns of the next one."""

    def __init__(self, what: str, log: logging.Logger, backoff: Backoff = Backoff(),
                 monotonic: Callable[[], float] = time.monotonic):
        self.what, self.log, self.backoff, self.monotonic = what, log, backoff, monotonic
        self.failures = 0
        self.since = 0.0
        self.cause: str | None = None

    def failed(self, exc: BaseException, cause: str | None = None) -> float:
        """Record a failure; returns how long to wait before the next attempt."""
        self.failures += 1
        if self.failures == 1:
            self.since = self.monotonic()
            self.log.warning("%s: %s; retrying with backoff", self.what, describe(exc))
        elif cause != self.cause:
            self.log.warning("%s: failing differently now (for %.1f s): %s", self.what,
                             self.monotonic() - self.since, describe(exc))
        else:
            self.log.debug("%s: still failing (%d): %s", self.what, self.failures, describe(exc))
        self.cause = cause
        return self.backoff.delay(self.failures)

    def ended(self) -> None:
        if self.failures:
            self.log.warning("%s: working again after %.1f s (%d failed attempts)", self.what,
                             self.monotonic() - self.since, self.failures)
            self.failures, self.cause = 0, None


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
