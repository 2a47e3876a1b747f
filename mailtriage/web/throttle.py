"""How much login work the board does: a guard in front of Argon2.

Each POST /login verifies a password with Argon2id (64 MiB, 3 passes) in a
worker thread. The board runs inside the daemon, so a flood of logins must
not eat the memory and the cores that mail intake needs. Two limits, both
before any hashing:

- at most `slots` verifications at a time (2): a login that finds them all
  taken waits up to `wait` seconds for one, then is answered "busy, try
  again" (503) without hashing;
- failures per client address and per user name: `failures` (5) wrong
  logins within `window` (5 min) refuse that address or that name for
  `lockout` (1 min), answered 429 without hashing. A correct login clears
  its name's count (not its address's: one known password must not reset
  the count of guesses at other names).

Both live in memory, per process; at most `MAX_KEYS` addresses and names are
remembered (the oldest are forgotten first), so the guard itself cannot be
made to grow without end.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")
MAX_KEYS = 10_000
POLL = 0.05                 # seconds between looks at a busy slot


class Busy(Exception):
    """No verification slot came free in time."""


@dataclass
class Guard:
    slots: int = 2
    wait: float = 3.0
    failures: int = 5
    window: float = 300.0
    lockout: float = 60.0
    clock: Callable[[], float] = time.monotonic
    free: threading.Semaphore = field(init=False, repr=False)     # the slots (a test may hold them)
    _failed: dict[str, deque[float]] = field(init=False, repr=False, default_factory=dict)
    _locked: dict[str, float] = field(init=False, repr=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # A threading semaphore, polled from the event loop: it belongs to no
        # loop, so a listener restarted on a new loop (SIGHUP) keeps the guard.
        self.free = threading.Semaphore(self.slots)

    # -- failures ---------------------------------------------------------
    def refused_for(self, *keys: str) -> float:
        """Seconds until these keys may try again (0: they may now)."""
        now = self.clock()
        with self._lock:
            return max((self._locked.get(key, now) - now for key in keys), default=0.0)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            self._count(keys, now)
            self._forget(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failed.pop(key, None)

    def _count(self, keys: tuple[str, ...], now: float) -> None:
        for key in keys:
            seen = self._failed.pop(key, None) or deque()
            seen.append(now)
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.failures:
                self._locked[key] = now + self.lockout
                seen.clear()
            self._failed[key] = seen              # re-inserted: the newest key is last

    def _forget(self, now: float) -> None:
        for key in [key for key, until in self._locked.items() if until <= now]:
            del self._locked[key]
        while len(self._failed) > MAX_KEYS:
            del self._failed[next(iter(self._failed))]
        while len(self._locked) > MAX_KEYS:
            del self._locked[next(iter(self._locked))]

    # -- verification slots -----------------------------------------------
    async def verify(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` in a free slot; Busy when none comes free within `wait`."""
        deadline = self.clock() + self.wait
        while not self.free.acquire(blocking=False):
            if self.clock() >= deadline:
                raise Busy()
            await asyncio.sleep(POLL)
        try:
            return await work()
        finally:
            self.free.release()
