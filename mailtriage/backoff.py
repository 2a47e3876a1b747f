"""Waiting after failures: exponential backoff with jitter, and an outage
that is logged once when it starts and once when it ends — never a line per
retry, never a tight loop.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Backoff:
    """first, 2×first, 4×first … capped; each delay shortened by a random share
    up to `jitter`, so daemons that lost the same server do not return in step."""

    first: float = 1.0
    cap: float = 300.0
    jitter: float = 0.5

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        base = min(self.cap, self.first * 2 ** max(failures - 1, 0))
        return base * (1.0 - self.jitter * rng())


class Outage:
    """Counts consecutive failures of one thing (an IMAP server, the store)."""

    def __init__(self, what: str, log: logging.Logger, backoff: Backoff = Backoff(),
                 monotonic: Callable[[], float] = time.monotonic):
        self.what, self.log, self.backoff, self.monotonic = what, log, backoff, monotonic
        self.failures = 0
        self.since = 0.0

    def failed(self, exc: BaseException) -> float:
        """Record a failure; returns how long to wait before the next attempt."""
        self.failures += 1
        if self.failures == 1:
            self.since = self.monotonic()
            self.log.warning("%s: %s; retrying with backoff", self.what, describe(exc))
        else:
            self.log.debug("%s: still failing (%d): %s", self.what, self.failures, describe(exc))
        return self.backoff.delay(self.failures)

    def ended(self) -> None:
        if self.failures:
            self.log.warning("%s: working again after %.1f s (%d failed attempts)", self.what,
                             self.monotonic() - self.since, self.failures)
            self.failures = 0


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
