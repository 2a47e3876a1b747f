"""SLA clocks (pure): how much working time a target has used, and when it runs out.

Beside the message flow. A ticket has up to three clocks, one per target of
its severity: `first_response`, `resolution` and, when configured,
`next_update`. A clock runs in *segments*: each segment starts when the
clock (re)starts and ends when it pauses (ticket pending), stops (first
reply, resolved, closed) or changes calendar (severity changed). A closed
segment keeps the working time it counted in the calendar in force at the
time, so a severity change keeps the time already used and a pause costs
nothing. The whole state is a value that round-trips through JSON
(`Clocks.to_json` / `Clocks.from_json`), which is how the store keeps it in
`tickets.sla_data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from mailtriage.sla.calendar import Calendar

__all__ = ["CLOCK_NAMES", "Clock", "Clocks", "Segment"]

FIRST_RESPONSE, RESOLUTION, NEXT_UPDATE = "first_response", "resolution", "next_update"
CLOCK_NAMES = (FIRST_RESPONSE, RESOLUTION, NEXT_UPDATE)
LABELS = {FIRST_RESPONSE: "first response", RESOLUTION: "resolution", NEXT_UPDATE: "next update"}

# Clock states. `idle`: not started (next_update before the first reply, or
# between a resolution and a reopening).
RUNNING, PAUSED, STOPPED, IDLE = "running", "paused", "stopped", "idle"

Calendars = Mapping[str, Calendar]


@dataclass(frozen=True)
class Segment:
    """One stretch of running clock; `end` None while it runs."""

    start: datetime
    end: datetime | None
    calendar: str
    worked: timedelta = timedelta(0)     # working time in [start, end), once closed


@dataclass(frozen=True)
class Clock:
    name: str
    target: timedelta
    calendar: str                       # the calendar the target is measured in now
    state: str = IDLE
    segments: tuple[Segment, ...] = ()
    cycle: int = 1                      # next_update: which update is awaited
    outcome: str | None = None          # met | breached, set when the clock stops

    @property
    def since(self) -> datetime | None:
        """Start of the running segment, or None when the clock is not running."""
        if self.state == RUNNING and self.segments and self.segments[-1].end is None:
            return self.segments[-1].start
        return None

    @property
    def used_before(self) -> timedelta:
        """Working time of the closed segments."""
        return sum((s.worked for s in self.segments if s.end is not None), timedelta(0))

    def used(self, now: datetime, calendars: Calendars) -> timedelta:
        """Working time used up to `now`."""
        since = self.since
        running = calendars[self.calendar].between(since, now) if since is not None else timedelta(0)
        return self.used_before + running

    def when(self, share: float, calendars: Calendars) -> datetime | None:
        """When `share` of the target will have been used; None unless running.

        A share already used up answers the start of the running segment.
        """
        since = self.since
        if since is None:
            return None
        remaining = max(self.target * share - self.used_before, timedelta(0))
        return calendars[self.calendar].add(since, remaining)

    # -- transitions; each returns a new Clock -----------------------------

    def run(self, now: datetime) -> Clock:
        """Start or resume at `now` (a running clock is left alone)."""
        if self.state == RUNNING:
            return self
        return replace(self, state=RUNNING, outcome=None,
                       segments=self.segments + (Segment(now, None, self.calendar),))

    def halt(self, now: datetime, calendars: Calendars, state: str) -> Clock:
        """Pause, stop or idle at `now`, closing the running segment."""
        clock = self._close(now, calendars)
        outcome = None
        if state == STOPPED:
            outcome = clock.outcome if self.state == STOPPED else \
                ("met" if clock.used_before <= clock.target else "breached")
        return replace(clock, state=state, outcome=outcome)

    def retarget(self, target: timedelta, calendar: str, now: datetime, calendars: Calendars) -> Clock:
        """A new target and calendar from `now` on, keeping the time used so far."""
        if self.state != RUNNING:
            return replace(self, target=target, calendar=calendar)
        closed = self._close(now, calendars)
        return replace(closed, target=target, calendar=calendar,
                       segments=closed.segments + (Segment(now, None, calendar),))

    def next_cycle(self, now: datetime) -> Clock:
        """next_update: the awaited update came; wait for the next one from `now`."""
        return replace(self, state=RUNNING, cycle=self.cycle + 1, outcome=None,
                       segments=(Segment(now, None, self.calendar),))

    def _close(self, now: datetime, calendars: Calendars) -> Clock:
        since = self.since
        if since is None:
            return self
        end = max(now, since)
        last = Segment(since, end, self.calendar, calendars[self.calendar].between(since, end))
        return replace(self, segments=self.segments[:-1] + (last,))

    # -- JSON ----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target.total_seconds(), "calendar": self.calendar, "state": self.state,
                "cycle": self.cycle, "outcome": self.outcome,
                "segments": [[_iso(s.start), _iso(s.end), s.calendar, s.worked.total_seconds()]
                             for s in self.segments]}

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> Clock:
        segments = tuple(Segment(_instant(start), _instant(end) if end else None, calendar,
                                 timedelta(seconds=worked))
                         for start, end, calendar, worked in data.get("segments", ()))
        return cls(name, timedelta(seconds=data["target"]), data["calendar"], data.get("state", IDLE),
                   segments, int(data.get("cycle", 1)), data.get("outcome"))


@dataclass(frozen=True)
class Clocks:
    """All SLA state of one ticket: its clocks, the notices done, a short log."""

    severity: str
    clocks: dict[str, Clock]
    done: tuple[str, ...] = ()                              # milestone keys acted on (see deadlines)
    log: tuple[tuple[datetime, str], ...] = field(default=())   # pauses, resumes, severity changes …

    def get(self, name: str) -> Clock | None:
        return self.clocks.get(name)

    def with_clock(self, clock: Clock) -> Clocks:
        return replace(self, clocks={**self.clocks, clock.name: clock})

    def noted(self, now: datetime, what: str) -> Clocks:
        return replace(self, log=self.log + ((now, what),))

    def mark_done(self, *keys: str) -> Clocks:
        return replace(self, done=self.done + tuple(k for k in keys if k not in self.done))

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "severity": self.severity,
                "clocks": {name: clock.to_json() for name, clock in self.clocks.items()},
                "done": list(self.done), "log": [[_iso(at), what] for at, what in self.log]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Clocks | None:
        """None for an empty or unknown mapping (a ticket from before SLA clocks)."""
        if not data or data.get("v") != 1:
            return None
        clocks = {name: Clock.from_json(name, value) for name, value in data["clocks"].items()}
        return cls(data["severity"], clocks, tuple(data.get("done", ())),
                   tuple((_instant(at), what) for at, what in data.get("log", ())))


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(timezone.utc).isoformat() if at is not None else None


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)
