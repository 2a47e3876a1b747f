"""SLA timers (pure): how much working time a target has used, and when it runs out.

Beside the message flow. A ticket has up to three timers, one per target of
its severity: `first_response`, `resolution` and, when configured,
`next_update`. A timer runs in *segments*: each segment starts when the
timer (re)starts and ends when it pauses (ticket pending), stops (first
reply, resolved, closed) or changes calendar (severity changed). A closed
segment keeps the working time it counted in the calendar in force at the
time, so a severity change keeps the time already used and a pause costs
nothing. The whole state is a value that round-trips through JSON
(`Timers.to_json` / `Timers.from_json`), which is how the store keeps it in
`tickets.sla_data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, cast

from mailtriage.sla.calendar import Calendar

__all__ = ["TIMER_NAMES", "Timer", "Timers", "Segment"]

FIRST_RESPONSE, RESOLUTION, NEXT_UPDATE = "first_response", "resolution", "next_update"
TIMER_NAMES = (FIRST_RESPONSE, RESOLUTION, NEXT_UPDATE)
LABELS = {FIRST_RESPONSE: "first response", RESOLUTION: "resolution", NEXT_UPDATE: "next update"}

# Timer states. `idle`: not started (next_update before the first reply, or
# between a resolution and a reopening).
RUNNING, PAUSED, STOPPED, IDLE = "running", "paused", "stopped", "idle"

Calendars = Mapping[str, Calendar]


@dataclass(frozen=True)
class Segment:
    """One stretch of running timer; `end` None while it runs."""

    start: datetime
    end: datetime | None
    calendar: str
    worked: timedelta = timedelta(0)     # working time in [start, end), once closed


@dataclass(frozen=True)
class Timer:
    name: str
    target: timedelta
    calendar: str                       # the calendar the target is measured in now
    state: str = IDLE
    segments: tuple[Segment, ...] = ()
    cycle: int = 1                      # next_update: which update is awaited
    outcome: str | None = None          # met | breached, set when the timer stops
    # Answers of `used` and `when` given already, by question, with the
    # calendar asked: the SLA sweep asks a ticket's timer about twenty times
    # (milestones, the stored deadlines, the notice's lines) and each answer
    # walks the calendar. A pure function of the fields above and the
    # calendar, so not part of the value (as Calendar._days).
    _answers: dict[tuple[Any, ...], tuple[Calendar, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def since(self) -> datetime | None:
        """Start of the running segment, or None when the timer is not running."""
        if self.state == RUNNING and self.segments and self.segments[-1].end is None:
            return self.segments[-1].start
        return None

    @property
    def used_before(self) -> timedelta:
        """Working time of the closed segments."""
        return sum((s.worked for s in self.segments if s.end is not None), timedelta(0))

    def used(self, now: datetime, calendars: Calendars) -> timedelta:
        """Working time used up to `now`."""
        calendar, since = calendars[self.calendar], self.since
        return cast(timedelta, self._asked(("used", now), calendar, lambda: self.used_before + (
            calendar.between(since, now) if since is not None else timedelta(0))))

    def when(self, share: float, calendars: Calendars) -> datetime | None:
        """When `share` of the target will have been used; None unless running.

        A share already used up answers the start of the running segment.
        """
        since = self.since
        if since is None:
            return None
        calendar = calendars[self.calendar]
        remaining = max(self.target * share - self.used_before, timedelta(0))
        return cast(datetime, self._asked(("when", share), calendar, lambda: calendar.add(since, remaining)))

    def _asked(self, question: tuple[Any, ...], calendar: Calendar, answer: Callable[[], Any]) -> Any:
        """The answer given before to `question` with this same calendar (not
        one of another config), else `answer()`, remembered."""
        known = self._answers.get(question)
        if known is not None and known[0] is calendar:
            return known[1]
        value = answer()
        self._answers[question] = (calendar, value)
        return value

    # -- transitions; each returns a new Timer -----------------------------

    def run(self, now: datetime) -> Timer:
        """Start or resume at `now` (a running timer is left alone)."""
        if self.state == RUNNING:
            return self
        return replace(self, state=RUNNING, outcome=None,
                       segments=self.segments + (Segment(now, None, self.calendar),))

    def halt(self, now: datetime, calendars: Calendars, state: str) -> Timer:
        """Pause, stop or idle at `now`, closing the running segment."""
        timer = self._close(now, calendars)
        outcome = None
        if state == STOPPED:
            outcome = timer.outcome if self.state == STOPPED else \
                ("met" if timer.used_before <= timer.target else "breached")
        return replace(timer, state=state, outcome=outcome)

    def retarget(self, target: timedelta, calendar: str, now: datetime, calendars: Calendars) -> Timer:
        """A new target and calendar from `now` on, keeping the time used so far."""
        if self.state != RUNNING:
            return replace(self, target=target, calendar=calendar)
        closed = self._close(now, calendars)
        return replace(closed, target=target, calendar=calendar,
                       segments=closed.segments + (Segment(now, None, calendar),))

    def next_cycle(self, now: datetime) -> Timer:
        """next_update: the awaited update came; wait for the next one from `now`."""
        return replace(self, state=RUNNING, cycle=self.cycle + 1, outcome=None,
                       segments=(Segment(now, None, self.calendar),))

    def _close(self, now: datetime, calendars: Calendars) -> Timer:
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
    def from_json(cls, name: str, data: Mapping[str, Any]) -> Timer:
        segments = tuple(Segment(_instant(start), _instant(end) if end else None, calendar,
                                 timedelta(seconds=worked))
                         for start, end, calendar, worked in data.get("segments", ()))
        return cls(name, timedelta(seconds=data["target"]), data["calendar"], data.get("state", IDLE),
                   segments, int(data.get("cycle", 1)), data.get("outcome"))


@dataclass(frozen=True)
class Timers:
    """All SLA state of one ticket: its timers, the notices done, a short log."""

    severity: str
    timers: dict[str, Timer]
    done: tuple[str, ...] = ()                              # milestone keys acted on (see deadlines)
    log: tuple[tuple[datetime, str], ...] = field(default=())   # pauses, resumes, severity changes …
    # When the ticket was imported as history: its milestones are recorded,
    # never announced, until live mail from the customer revives it.
    history: datetime | None = None

    def get(self, name: str) -> Timer | None:
        return self.timers.get(name)

    def with_timer(self, timer: Timer) -> Timers:
        return replace(self, timers={**self.timers, timer.name: timer})

    def noted(self, now: datetime, what: str) -> Timers:
        return replace(self, log=self.log + ((now, what),))

    def mark_done(self, *keys: str) -> Timers:
        return replace(self, done=self.done + tuple(k for k in keys if k not in self.done))

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "severity": self.severity,
                # "clocks": the key tickets.sla_data has always had
                "clocks": {name: timer.to_json() for name, timer in self.timers.items()},
                "done": list(self.done), "log": [[_iso(at), what] for at, what in self.log],
                **({"history": _iso(self.history)} if self.history is not None else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Timers | None:
        """None for an empty or unknown mapping (a ticket from before SLA timers)."""
        if not data or data.get("v") != 1:
            return None
        timers = {name: Timer.from_json(name, value) for name, value in data["clocks"].items()}
        return cls(data["severity"], timers, tuple(data.get("done", ())),
                   tuple((_instant(at), what) for at, what in data.get("log", ())),
                   _instant(data["history"]) if data.get("history") else None)


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(timezone.utc).isoformat() if at is not None else None


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)
