"""What a ticket's changes do to its SLA timers; called from the ticket workflow.

The four entry points take the Ticket (mutated in place), `now` and the
Config; they keep `sla_data` (the timers, as JSON), the deadline columns,
`next_deadline` (what the SLA sweep looks for) and `sla_state` current.
No database access and no clock reading here: the caller's transaction
stores the result.

    start              new ticket: timers run from `now`
    severity_changed   new targets; the working time used so far still counts
    status_changed     pending pauses, leaving pending resumes, resolved stops
                       the resolution timer, reopening restarts it with the
                       time used, closed stops everything
    first_response     an agent's public reply: stops the first-response
                       timer; safe to call on every public reply (later ones
                       restart the next-update timer)
"""

from __future__ import annotations

from datetime import datetime

from mailtriage.app import Config
from mailtriage.model import Status
from mailtriage.sla import deadlines
from mailtriage.sla.timers import FIRST_RESPONSE, NEXT_UPDATE, RESOLUTION, RUNNING, Timers
from mailtriage.store.schema import Ticket

__all__ = ["first_response", "load", "severity_changed", "start", "status_changed", "store"]


def start(ticket: Ticket, now: datetime, config: Config) -> None:
    """A new ticket: deadlines, next_deadline and sla_state from `now`."""
    timers = deadlines.start(now, ticket.severity, config.settings.sla)
    store(ticket, _settle(ticket, timers, now, config), now, config)


def severity_changed(ticket: Ticket, now: datetime, config: Config) -> None:
    """`ticket.severity` was changed: recompute deadlines, keeping the working time used."""
    timers = load(ticket, config)
    timers = deadlines.change_severity(timers, ticket.severity, now, config.settings.sla, config.calendars)
    store(ticket, _settle(ticket, timers, now, config), now, config)


def status_changed(ticket: Ticket, old_status: str, now: datetime, config: Config) -> None:
    """`ticket.status` changed from `old_status`: pause, resume, stop or restart timers."""
    new_status = ticket.status
    timers = load(ticket, config)
    if new_status != old_status:
        timers = timers.noted(now, f"status {old_status} → {new_status}")
    if new_status == Status.RESOLVED.value:
        if ticket.resolved_at is None or old_status != Status.RESOLVED.value:
            ticket.resolved_at = now
    elif new_status != Status.CLOSED.value:
        ticket.resolved_at = None            # reopened (or never resolved)
    store(ticket, _settle(ticket, timers, now, config), now, config)


def first_response(ticket: Ticket, now: datetime, config: Config) -> None:
    """An agent's public reply: the first one stops the first-response timer."""
    timers = load(ticket, config)
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
        timers = timers.noted(now, "first public reply")
    else:
        update = timers.get(NEXT_UPDATE)
        if update is not None and update.segments and ticket.status not in (
                Status.RESOLVED.value, Status.CLOSED.value):
            timers = timers.with_timer(update.next_cycle(now)).noted(now, "public reply (update)")
    store(ticket, _settle(ticket, timers, now, config), now, config)


# -- the store side ------------------------------------------------------------

def load(ticket: Ticket, config: Config) -> Timers:
    """The ticket's timers; a ticket from before SLA timers gets them from its creation."""
    timers = Timers.from_json(ticket.sla_data or {})
    if timers is None:
        timers = deadlines.start(ticket.created_at, ticket.severity, config.settings.sla)
        timers = _settle(ticket, timers, ticket.created_at, config)
    return timers


def store(ticket: Ticket, timers: Timers, now: datetime, config: Config) -> None:
    """Write the timers and everything derived from them onto the ticket."""
    sla, calendars = config.settings.sla, config.calendars
    ticket.sla_data = timers.to_json()                    # a new dict: SQLAlchemy sees the change
    # Paused or stopped timers keep the deadline that was in force when they last ran.
    for name, column in ((FIRST_RESPONSE, "first_response_due"), (RESOLUTION, "resolution_due")):
        timer = timers.get(name)
        if timer is not None and timer.state == RUNNING:
            setattr(ticket, column, timer.when(1.0, calendars))
    ticket.next_deadline = deadlines.next_deadline(timers, sla.warn_at, calendars)
    ticket.sla_state = deadlines.state_of(timers, ticket.status, now, sla.warn_at, calendars)


def _settle(ticket: Ticket, timers: Timers, now: datetime, config: Config) -> Timers:
    return deadlines.settle(timers, ticket.status, ticket.first_responded_at is not None, now, config.calendars)
