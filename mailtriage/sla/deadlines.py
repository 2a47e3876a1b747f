"""Deadlines (pure): what the status asks of each clock, and what is due when.

Beside the message flow. `start` builds a ticket's clocks from the targets
of its severity; `settle` brings every clock into the state the ticket's
status asks for (running while new/open, paused while pending, stopped when
resolved or closed); `change_severity` swaps targets keeping the working time
used. `milestones` lists what the SLA sweep must act on and when: a warning
at `warn_at` of each target, a breach at 100%, and for the resolution a
second escalation at 200%. Each milestone has a key (`resolution.due`,
`next_update.2.warn`) that goes into `Clocks.done` once acted on, so a sweep
never sends a notice twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailtriage.model import Severity, Status
from mailtriage.config.values import SlaSettings, Target
from mailtriage.sla.clocks import (
    CLOCK_NAMES,
    FIRST_RESPONSE,
    IDLE,
    NEXT_UPDATE,
    PAUSED,
    RESOLUTION,
    RUNNING,
    STOPPED,
    Calendars,
    Clock,
    Clocks,
)

__all__ = ["Milestone", "change_severity", "milestones", "settle", "start", "state_of", "target_for"]

WARN, DUE, AGAIN = "warn", "due", "again"
AGAIN_SHARE = 2.0        # still unresolved after twice the resolution target: escalate again


@dataclass(frozen=True, order=True)
class Milestone:
    """One instant the sweep acts on."""

    at: datetime
    key: str                # unique per ticket: goes into Clocks.done
    clock: str              # first_response | resolution | next_update
    kind: str               # warn | due | again

    @property
    def share(self) -> str:
        return {WARN: "warning", DUE: "breach", AGAIN: "twice the target"}[self.kind]


def target_for(sla: SlaSettings, severity: str) -> Target:
    return sla.targets[Severity(severity)]


def _durations(target: Target) -> dict[str, timedelta | None]:
    return {FIRST_RESPONSE: target.first_response, RESOLUTION: target.resolution,
            NEXT_UPDATE: target.next_update}


def start(now: datetime, severity: str, sla: SlaSettings) -> Clocks:
    """Fresh clocks for a new ticket; `settle` then starts the right ones."""
    target = target_for(sla, severity)
    clocks = {name: Clock(name, duration, target.calendar)
              for name, duration in _durations(target).items() if duration is not None}
    return Clocks(severity, clocks).noted(now, f"started: {severity} targets in calendar {target.calendar}")


def change_severity(clocks: Clocks, severity: str, now: datetime, sla: SlaSettings,
                    calendars: Calendars) -> Clocks:
    """The new severity's targets from `now` on; working time already used still counts."""
    if severity == clocks.severity:
        return clocks
    target = target_for(sla, severity)
    changed: dict[str, Clock] = {}
    for name, duration in _durations(target).items():
        old = clocks.get(name)
        if duration is None:
            continue                                  # a target the new severity does not have
        if old is None:
            changed[name] = Clock(name, duration, target.calendar)
        else:
            changed[name] = old.retarget(duration, target.calendar, now, calendars)
    result = Clocks(severity, changed, clocks.done, clocks.log)
    return result.noted(now, f"severity {clocks.severity} → {severity}: targets in calendar {target.calendar}")


def _wanted(name: str, status: str, responded: bool) -> str:
    """The state a clock should be in for a ticket status."""
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


def settle(clocks: Clocks, status: str, responded: bool, now: datetime, calendars: Calendars) -> Clocks:
    """Bring every clock into the state `status` asks for, at `now`."""
    result = clocks
    for name in CLOCK_NAMES:
        clock = clocks.get(name)
        if clock is None:
            continue
        wanted = _wanted(name, status, responded)
        if wanted == clock.state:
            continue
        if wanted == RUNNING:
            fresh_cycle = name == NEXT_UPDATE and clock.state == IDLE and clock.segments
            moved = clock.next_cycle(now) if fresh_cycle else clock.run(now)
        else:
            moved = clock.halt(now, calendars, wanted)
        result = result.with_clock(moved)
    return result


def key_prefix(clock: Clock) -> str:
    return f"{clock.name}.{clock.cycle}" if clock.name == NEXT_UPDATE else clock.name


def milestones(clocks: Clocks, warn_at: float, calendars: Calendars, *, include_done: bool = False) -> list[Milestone]:
    """What is still to act on for the running clocks, earliest first."""
    found = []
    for clock in clocks.clocks.values():
        if clock.state != RUNNING:
            continue
        shares = [(WARN, warn_at)] if 0 < warn_at < 1 else []
        shares.append((DUE, 1.0))
        if clock.name == RESOLUTION:
            shares.append((AGAIN, AGAIN_SHARE))
        for kind, share in shares:
            key = f"{key_prefix(clock)}.{kind}"
            at = clock.when(share, calendars)
            if at is not None and (include_done or key not in clocks.done):
                found.append(Milestone(at, key, clock.name, kind))
    return sorted(found)


def next_deadline(clocks: Clocks, warn_at: float, calendars: Calendars) -> datetime | None:
    pending = milestones(clocks, warn_at, calendars)
    return pending[0].at if pending else None


def breaches(clocks: Clocks) -> int:
    """How many targets were missed: breach notices, plus clocks that stopped late unnoticed."""
    noticed = {key.rsplit(".", 1)[0] for key in clocks.done if key.endswith("." + DUE)}
    late = {key_prefix(c) for c in clocks.clocks.values() if c.outcome == "breached"}
    return len(noticed | late)


def state_of(clocks: Clocks, status: str, now: datetime, warn_at: float, calendars: Calendars) -> str:
    """ok | warning | breached | paused | met, as the CONTRACT's sla_state."""
    due_now = [m for m in milestones(clocks, warn_at, calendars) if m.at <= now]
    if breaches(clocks) or any(m.kind != WARN for m in due_now):
        return "breached"
    if status in (Status.RESOLVED.value, Status.CLOSED.value):
        return "met"
    if status == Status.PENDING.value:
        return "paused"
    for clock in clocks.clocks.values():
        if clock.state == RUNNING and f"{key_prefix(clock)}.{WARN}" in clocks.done:
            return "warning"
    return "warning" if due_now else "ok"
