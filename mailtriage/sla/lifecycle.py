"""What a ticket's changes do to its SLA clocks; called from the ticket workflow.

The four entry points take the Ticket (mutated in place), `now` and the
Config; they keep `sla_data` (the clocks, as JSON), the deadline columns,
`next_deadline` (what the SLA sweep looks for) and `sla_state` current.
No database access and no clock reading here: the caller's transaction
stores the result.

    start              new ticket: clocks run from `now`
    severity_changed   new targets; the working time used so far still counts
    status_changed     pending pauses, leaving pending resumes, resolved stops
                       the resolution clock, reopening restarts it with the
                       time used, closed stops everything
    first_response     an agent's public reply: stops the first-response
                       clock; safe to call on every public reply (later ones
                       restart the next-update clock)
"""

from __future__ import annotations

from datetime import datetime

from mailtriage.app import Config
from mailtriage.model import Status
from mailtriage.sla import deadlines
from mailtriage.sla.clocks import FIRST_RESPONSE, NEXT_UPDATE, RESOLUTION, RUNNING, Clocks
from mailtriage.store.schema import Ticket

__all__ = ["first_response", "load", "severity_changed", "start", "status_changed", "store"]


def start(ticket: Ticket, now: datetime, config: Config) -> None:
    """A new ticket: deadlines, next_deadline and sla_state from `now`."""
    clocks = deadlines.start(now, ticket.severity, config.settings.sla)
    store(ticket, _settle(ticket, clocks, now, config), now, config)


def severity_changed(ticket: Ticket, now: datetime, config: Config) -> None:
    """`ticket.severity` was changed: recompute deadlines, keeping the working time used."""
    clocks = load(ticket, config)
    clocks = deadlines.change_severity(clocks, ticket.severity, now, config.settings.sla, config.calendars)
    store(ticket, _settle(ticket, clocks, now, config), now, config)


def status_changed(ticket: Ticket, old_status: str, now: datetime, config: Config) -> None:
    """`ticket.status` changed from `old_status`: pause, resume, stop or restart clocks."""
    new_status = ticket.status
    clocks = load(ticket, config)
    if new_status != old_status:
        clocks = clocks.noted(now, f"status {old_status} → {new_status}")
    if new_status == Status.RESOLVED.value:
        if ticket.resolved_at is None or old_status != Status.RESOLVED.value:
            ticket.resolved_at = now
    elif new_status != Status.CLOSED.value:
        ticket.resolved_at = None            # reopened (or never resolved)
    store(ticket, _settle(ticket, clocks, now, config), now, config)


def first_response(ticket: Ticket, now: datetime, config: Config) -> None:
    """An agent's public reply: the first one stops the first-response clock."""
    clocks = load(ticket, config)
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
        clocks = clocks.noted(now, "first public reply")
    else:
        update = clocks.get(NEXT_UPDATE)
        if update is not None and update.segments and ticket.status not in (
                Status.RESOLVED.value, Status.CLOSED.value):
            clocks = clocks.with_clock(update.next_cycle(now)).noted(now, "public reply (update)")
    store(ticket, _settle(ticket, clocks, now, config), now, config)


# -- the store side ------------------------------------------------------------

def load(ticket: Ticket, config: Config) -> Clocks:
    """The ticket's clocks; a ticket from before SLA clocks gets them from its creation."""
    clocks = Clocks.from_json(ticket.sla_data or {})
    if clocks is None:
        clocks = deadlines.start(ticket.created_at, ticket.severity, config.settings.sla)
        clocks = _settle(ticket, clocks, ticket.created_at, config)
    return clocks


def store(ticket: Ticket, clocks: Clocks, now: datetime, config: Config) -> None:
    """Write the clocks and everything derived from them onto the ticket."""
    sla, calendars = config.settings.sla, config.calendars
    ticket.sla_data = clocks.to_json()                    # a new dict: SQLAlchemy sees the change
    # Paused or stopped clocks keep the deadline that was in force when they last ran.
    for name, column in ((FIRST_RESPONSE, "first_response_due"), (RESOLUTION, "resolution_due")):
        clock = clocks.get(name)
        if clock is not None and clock.state == RUNNING:
            setattr(ticket, column, clock.when(1.0, calendars))
    ticket.next_deadline = deadlines.next_deadline(clocks, sla.warn_at, calendars)
    ticket.sla_state = deadlines.state_of(clocks, ticket.status, now, sla.warn_at, calendars)


def _settle(ticket: Ticket, clocks: Clocks, now: datetime, config: Config) -> Clocks:
    return deadlines.settle(clocks, ticket.status, ticket.first_responded_at is not None, now, config.calendars)
