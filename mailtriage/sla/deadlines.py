"""Deadlines from targets and business calendars (pure).

A ticket has two clocks, first response and resolution, each measured in the
calendar its severity's target names. `next_deadline` is the earliest
instant at which the SLA sweep has something to do (a warning or a breach).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailtriage.model import Severity
from mailtriage.settings import SlaSettings, Target
from mailtriage.sla.calendar import Calendar


@dataclass(frozen=True)
class Deadlines:
    first_response_due: datetime
    first_response_warn: datetime
    resolution_due: datetime
    resolution_warn: datetime

    def next_after(self, responded: bool, resolved: bool, done: frozenset[str] = frozenset()) -> datetime | None:
        """The earliest deadline still to act on, given which notices went out."""
        steps = []
        if not responded:
            steps += [("first_response_warn", self.first_response_warn),
                      ("first_response_due", self.first_response_due)]
        if not resolved:
            steps += [("resolution_warn", self.resolution_warn), ("resolution_due", self.resolution_due)]
        pending = [at for name, at in steps if name not in done]
        return min(pending) if pending else None


def target_for(sla: SlaSettings, severity: Severity) -> Target:
    return sla.targets[severity]


def compute(start: datetime, severity: Severity, sla: SlaSettings, calendars: dict[str, Calendar],
            used_response: timedelta = timedelta(0), used_resolution: timedelta = timedelta(0)) -> Deadlines:
    """Deadlines for a clock (re)started at `start` with some working time already used."""
    target = target_for(sla, severity)
    calendar = calendars[target.calendar]

    def due(total: timedelta, used: timedelta, share: float = 1.0) -> datetime:
        remaining = max(total * share - used, timedelta(0))
        return calendar.add(start, remaining)

    return Deadlines(
        first_response_due=due(target.first_response, used_response),
        first_response_warn=due(target.first_response, used_response, sla.warn_at),
        resolution_due=due(target.resolution, used_resolution),
        resolution_warn=due(target.resolution, used_resolution, sla.warn_at),
    )
