"""Waiting after failures, for every retry in mailtriage: exponential
backoff, with jitter where several daemons reconnect to one server (IMAP,
the daemon's restarts) and without it where the next try is a stored time
(the outbox's `due_at`); and an outage that is logged once when it starts,
once more for each new cause (connection refused → authentication failed →
folder gone: each needs a different fix) and once when it ends — never a
line per retry, never a tight loop.
"""

from __future__ import annotations

import logging
import random
import re
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
    the outgoing relay). Each new cause of an outage ("connection refused",
    "authentication failed", "folder gone") gets one more WARNING: the
    operator who fixed the first problem learns of the next one. A caller
    may name the cause; else it is the exception without its figures. A
    cause seen before in the same outage (a flapping server) stays quiet."""

    def __init__(self, what: str, log: logging.Logger, backoff: Backoff = Backoff(),
                 monotonic: Callable[[], float] = time.monotonic):
        self.what, self.log, self.backoff, self.monotonic = what, log, backoff, monotonic
        self.failures = 0
        self.since = 0.0
        self.cause: str | None = None         # the latest failure's
        self.causes: set[str] = set()         # this outage's so far, each said once

    def failed(self, exc: BaseException, cause: str | None = None) -> float:
        """Record a failure; returns how long to wait before the next attempt."""
        self.failures += 1
        self.cause = cause = cause or _cause(exc)
        if self.failures == 1:
            self.since, self.causes = self.monotonic(), {cause}
            self.log.warning("%s: %s; retrying with backoff", self.what, describe(exc))
        elif cause not in self.causes:
            self.causes.add(cause)
            self.log.warning("%s: failing differently now (for %.1f s): %s", self.what,
                             self.monotonic() - self.since, describe(exc))
        else:
            self.log.debug("%s: still failing (%d): %s", self.what, self.failures, describe(exc))
        return self.backoff.delay(self.failures)

    def ended(self) -> None:
        if self.failures:
            self.log.warning("%s: working again after %.1f s (%d failed attempts)", self.what,
                             self.monotonic() - self.since, self.failures)
            self.failures, self.cause, self.causes = 0, None, set()


def _cause(exc: BaseException) -> str:
    """What went wrong, without what changes at every try: figures (ports,
    counters) and remarks in parentheses (Dovecot's "(0.001 + 0.000 secs)")."""
    return re.sub(r"\d+", "#", re.sub(r"\([^()]*\)", "", describe(exc)))


def describe(exc: BaseException) -> str:
    """`ConnectionRefusedError: …`; imaplib's bare `error` as `IMAP4.error: …`."""
    text, kind = str(exc).strip(), exc.__class__.__qualname__
    return f"{kind}: {text}" if text else kind
