"""The one place that reads the wall clock.

Core functions take `now` as a parameter; the composition roots (cli.py,
daemon.py) hold a Clock and pass its readings down. `--now` builds a
FixedClock, tests build a FixedClock or a ManualClock and move it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)  # clock-ok: the only wall-clock read


class FixedClock:
    """A clock that always says the same instant (for `--now`)."""

    def __init__(self, instant: datetime):
        self._instant = ensure_aware(instant)

    def now(self) -> datetime:
        return self._instant


class ManualClock(FixedClock):
    """A clock that tests move forward by hand."""

    def advance(self, delta: timedelta) -> datetime:
        self._instant += delta
        return self._instant

    def set(self, instant: datetime) -> None:
        self._instant = ensure_aware(instant)


def ensure_aware(instant: datetime) -> datetime:
    """Naive datetimes are taken as UTC: mailtriage never guesses a local zone."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=timezone.utc)
    return instant


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant (`2026-03-02T09:00:00+01:00`, a trailing Z works)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    return ensure_aware(datetime.fromisoformat(value))
