"""Deadlines (pure): what the status asks of each SLA timer, and what is due when.

Beside the message flow. `start` builds a ticket's timers from the targets
of its severity; `settle` brings every timer into the state the ticket's
status asks for (running while new/open, paused while pending, stopped when
resolved or closed); `change_severity` swaps targets keeping the working time
used. `milestones` lists what the SLA sweep must act on and when: a warning
at `warn_at` of each target, a breach at 100%, and for the resolution a
second escalation at 200%. Each milestone has a key (`resolution.due`,
`next_update.2.warn`) that goes into `Timers.done` once acted on, so a sweep
never sends a notice twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailtriage.model import Severity, Status
from mailtriage.config.values import SlaSettings, Target
from mailtriage.sla.timers import (
    FIRST_RESPONSE,
    IDLE,
    NEXT_UPDATE,
    PAUSED,
    RESOLUTION,
    RUNNING,
    STOPPED,
    TIMER_NAMES,
    Calendars,
    Timer,
    Timers,
)

__all__ = ["Milestone", "change_severity", "milestones", "settle", "start", "state_of", "target_for"]

WARN, DUE, AGAIN = "warn", "due", "again"
AGAIN_SHARE = 2.0        # still unresolved after twice the resolution target: escalate again


@dataclass(frozen=True, order=True)
class Milestone:
    """One instant the sweep acts on."""

    at: datetime
    key: str                # unique per ticket: goes into Timers.done
    timer: str              # first_response | resolution | next_update
    kind: str               # warn | due | again

    @property
    def share(self) -> str:
        return {WARN: "warning", DUE: "breach", AGAIN: "twice the target"}[self.kind]


def target_for(sla: SlaSettings, severity: str) -> Target:
    return sla.targets[Severity(severity)]


def _durations(target: Target) -> dict[str, timedelta | None]:
    return {FIRST_RESPONSE: target.first_response, RESOLUTION: target.resolution,
            NEXT_UPDATE: target.next_update}


def start(now: datetime, severity: str, sla: SlaSettings) -> Timers:
    """Fresh timers for a new ticket; `settle` then starts the right ones."""
    target = target_for(sla, severity)
    timers = {name: Timer(name, duration, target.calendar)
              for name, duration in _durations(target).items() if duration is not None}
    return Timers(severity, timers).noted(now, f"started: {severity} targets in calendar {target.calendar}")


def change_severity(timers: Timers, severity: str, now: datetime, sla: SlaSettings,
                    calendars: Calendars) -> Timers:
    """The new severity's targets from `now` on; working time already used still counts."""
    if severity == timers.severity:
        return timers
    target = target_for(sla, severity)
    changed: dict[str, Timer] = {}
    for name, duration in _durations(target).items():
        old = timers.get(name)
        if duration is None:
            continue                                  # a target the new severity does not have
        if old is None:
            changed[name] = Timer(name, duration, target.calendar)
        else:
            changed[name] = old.retarget(duration, target.calendar, now, calendars)
    result = Timers(severity, changed, timers.done, timers.log)
    return result.noted(now, f"severity {timers.severity} → {severity}: targets in calendar {target.calendar}")


def _wanted(name: str, status: str, responded: bool) -> str:
    """The state a timer should be in for a ticket status."""
    if status == Status.CLOSED.value:
        return STOPPED
    if name == FIRST_RESPONSE:
        if responded:
            return STOPPED
        return PAUSED if status in (Status.PENDING.value, Status.RESOLVED.value) else RUNNING
    if name == RESOLUTION:
        return {Status.PENDING.value: PAUSED, Status.RESOLVED.value: STOPPED}.get(status, RUNNING)
    # next_update: only between the first reply and the resolution
    if not responded or status == Status.RESOLVED.value:
        return IDLE
    return PAUSED if status == Status.PENDING.value else RUNNING


def settle(timers: Timers, status: str, responded: bool, now: datetime, calendars: Calendars) -> Timers:
    """Bring every timer into the state `status` asks for, at `now`."""
    result = timers
    for name in TIMER_NAMES:
        timer = timers.get(name)
        if timer is None:
            continue
        wanted = _wanted(name, status, responded)
        if wanted == timer.state:
            continue
        if wanted == RUNNING:
            fresh_cycle = name == NEXT_UPDATE and timer.state == IDLE and timer.segments
            moved = timer.next_cycle(now) if fresh_cycle else timer.run(now)
        else:
            moved = timer.halt(now, calendars, wanted)
        result = result.with_timer(moved)
    return result


def key_prefix(timer: Timer) -> str:
    return f"{timer.name}.{timer.cycle}" if timer.name == NEXT_UPDATE else timer.name


def milestones(timers: Timers, warn_at: float, calendars: Calendars, *, include_done: bool = False) -> list[Milestone]:
    """What is still to act on for the running timers, earliest first."""
    found = []
    for timer in timers.timers.values():
        if timer.state != RUNNING:
            continue
        shares = [(WARN, warn_at)] if 0 < warn_at < 1 else []
        shares.append((DUE, 1.0))
        if timer.name == RESOLUTION:
            shares.append((AGAIN, AGAIN_SHARE))
        for kind, share in shares:
            key = f"{key_prefix(timer)}.{kind}"
            at = timer.when(share, calendars)
            if at is not None and (include_done or key not in timers.done):
                found.append(Milestone(at, key, timer.name, kind))
    return sorted(found)


def next_deadline(timers: Timers, warn_at: float, calendars: Calendars) -> datetime | None:
    pending = milestones(timers, warn_at, calendars)
    return pending[0].at if pending else None


def breaches(timers: Timers) -> int:
    """How many targets were missed: breach notices, plus timers that stopped late unnoticed."""
    noticed = {key.rsplit(".", 1)[0] for key in timers.done if key.endswith("." + DUE)}
    late = {key_prefix(c) for c in timers.timers.values() if c.outcome == "breached"}
    return len(noticed | late)


def state_of(timers: Timers, status: str, now: datetime, warn_at: float, calendars: Calendars, *,
             pending: list[Milestone] | None = None) -> str:
    """ok | warning | breached | paused | met, as the CONTRACT's sla_state.
    `pending`: `milestones(timers, warn_at, calendars)`, when the caller has them already."""
    if pending is None:
        pending = milestones(timers, warn_at, calendars)
    due_now = [m for m in pending if m.at <= now]
    if breaches(timers) or any(m.kind != WARN for m in due_now):
        return "breached"
    if status in (Status.RESOLVED.value, Status.CLOSED.value):
        return "met"
    if status == Status.PENDING.value:
        return "paused"
    for timer in timers.timers.values():
        if timer.state == RUNNING and f"{key_prefix(timer)}.{WARN}" in timers.done:
            return "warning"
    return "warning" if due_now else "ok"
