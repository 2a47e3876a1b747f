"""What a ticket's changes do to its SLA timers (pure: records in, records out).

The four entry points take a TicketRecord, `now`, the SLA settings and the
calendars, and return a new record whose `sla_data` (the timers, as JSON),
deadline columns, `next_deadline` (what the SLA sweep looks for) and
`sla_state` are current. No database access and no clock reading here.

    start              new ticket: timers run from `now`
    severity_changed   new targets; the working time used so far still counts
    status_changed     pending pauses, leaving pending resumes, resolved stops
                       the resolution clock, reopening restarts it with the
                       time used, closed stops everything
    first_response     an agent's public reply: stops the first-response
                       clock; safe to call on every public reply (later ones
                       restart the next-update clock)
    merged             `#merge`: per clock running on both tickets, the one
                       that has used more working time (the earlier deadline)
    split_off          `#split`: the new ticket's clocks from the moved
                       message's arrival (history if the source is)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from mailtriage.config.values import SlaSettings
from mailtriage.model import Status, TicketRecord
from mailtriage.sla import deadlines
from mailtriage.sla.deadlines import Milestone, key_prefix
from mailtriage.sla.durations import format_duration
from mailtriage.sla.timers import FIRST_RESPONSE, LABELS, NEXT_UPDATE, RESOLUTION, RUNNING, Calendars, Timer, Timers

__all__ = ["STORED", "as_history", "first_response", "imported_at", "is_history", "load", "merged", "revive",
           "severity_changed", "split_off", "start", "status_changed", "store"]


def start(ticket: TicketRecord, now: datetime, sla: SlaSettings, calendars: Calendars, *,
          history: datetime | None = None) -> TicketRecord:
    """A new ticket: deadlines, next_deadline and sla_state from `now`.
    `history`: taken in as history at that time, as `as_history()` would do
    next (a bulk import's every new ticket: the timers are stored once)."""
    timers = _settle(ticket, deadlines.start(now, ticket.severity, sla), now, calendars)
    if history is not None:
        return store(ticket, _historic(timers, history), history, sla, calendars)
    return store(ticket, timers, now, sla, calendars)


def severity_changed(ticket: TicketRecord, now: datetime, sla: SlaSettings,
                     calendars: Calendars) -> TicketRecord:
    """`ticket.severity` was changed: recompute deadlines, keeping the working time used."""
    timers = deadlines.change_severity(load(ticket, sla, calendars), ticket.severity, now, sla, calendars)
    return store(ticket, _settle(ticket, timers, now, calendars), now, sla, calendars)


def status_changed(ticket: TicketRecord, old_status: str, now: datetime, sla: SlaSettings,
                   calendars: Calendars) -> TicketRecord:
    """`ticket.status` changed from `old_status`: pause, resume, stop or restart timers."""
    new_status = ticket.status
    timers = load(ticket, sla, calendars)
    if new_status != old_status:
        timers = timers.noted(now, f"status {old_status} → {new_status}")
    if new_status == Status.RESOLVED.value:
        if ticket.resolved_at is None or old_status != Status.RESOLVED.value:
            ticket = replace(ticket, resolved_at=now)
    elif new_status != Status.CLOSED.value:
        ticket = replace(ticket, resolved_at=None)            # reopened (or never resolved)
    return store(ticket, _settle(ticket, timers, now, calendars), now, sla, calendars)


def first_response(ticket: TicketRecord, now: datetime, sla: SlaSettings, calendars: Calendars) -> TicketRecord:
    """An agent's public reply: the first one stops the first-response clock."""
    timers = load(ticket, sla, calendars)
    if ticket.first_responded_at is None:
        ticket = replace(ticket, first_responded_at=now)
        timers = timers.noted(now, "first public reply")
    else:
        update = timers.get(NEXT_UPDATE)
        if update is not None and update.segments and ticket.status not in (
                Status.RESOLVED.value, Status.CLOSED.value):
            timers = timers.with_timer(update.next_cycle(now)).noted(now, "public reply (update)")
    return store(ticket, _settle(ticket, timers, now, calendars), now, sla, calendars)


def load(ticket: TicketRecord, sla: SlaSettings, calendars: Calendars) -> Timers:
    """The ticket's timers; a ticket from before SLA timers gets them from its creation."""
    timers = Timers.from_json(ticket.sla_data or {})
    if timers is None:
        timers = deadlines.start(ticket.created_at, ticket.severity, sla)
        timers = _settle(ticket, timers, ticket.created_at, calendars)
    return timers


# The fields `store` derives from the timers; it leaves the others as they are.
STORED = ("sla_data", "first_response_due", "resolution_due", "next_deadline", "sla_state")


def store(ticket: TicketRecord, timers: Timers, now: datetime, sla: SlaSettings,
          calendars: Calendars, *, pending: list[Milestone] | None = None) -> TicketRecord:
    """The record with the timers and everything derived from them.
    `pending`: `deadlines.milestones(timers, sla.warn_at, calendars)`, when the caller has them already."""
    if pending is None:
        pending = deadlines.milestones(timers, sla.warn_at, calendars)
    return replace(ticket, sla_data=timers.to_json(),
                   first_response_due=_due(timers.get(FIRST_RESPONSE), ticket.first_response_due, calendars),
                   resolution_due=_due(timers.get(RESOLUTION), ticket.resolution_due, calendars),
                   next_deadline=pending[0].at if pending else None,
                   sla_state=deadlines.state_of(timers, ticket.status, now, sla.warn_at, calendars, pending=pending))


def _due(timer: Timer | None, kept: datetime | None, calendars: Calendars) -> datetime | None:
    """A running timer's deadline; a paused or stopped one keeps the one in force when it last ran."""
    return timer.when(1.0, calendars) if timer is not None and timer.state == RUNNING else kept


def _settle(ticket: TicketRecord, timers: Timers, now: datetime, calendars: Calendars) -> Timers:
    return deadlines.settle(timers, ticket.status, ticket.first_responded_at is not None, now, calendars)


def as_history(ticket: TicketRecord, imported_at: datetime, sla: SlaSettings, calendars: Calendars) -> TicketRecord:
    """A ticket taken in as history: its timers run from its own time, and
    the sweep records their milestones without announcing any."""
    timers = load(ticket, sla, calendars)
    if timers.history is not None:
        return ticket
    return store(ticket, _historic(timers, imported_at), imported_at, sla, calendars)


def _historic(timers: Timers, imported_at: datetime) -> Timers:
    return replace(timers, history=imported_at).noted(imported_at, "imported as history")


def revive(ticket: TicketRecord, now: datetime, sla: SlaSettings, calendars: Calendars) -> TicketRecord:
    """Live mail on a ticket imported as history: new timers from `now`, as
    for a new ticket (the customer is waiting for an answer from now on)."""
    old = load(ticket, sla, calendars)
    timers = deadlines.start(now, ticket.severity, sla)
    timers = replace(timers, log=old.log).noted(now, "live mail on a ticket imported as history: timers start")
    ticket = replace(ticket, first_responded_at=None, resolved_at=None)
    return store(ticket, _settle(ticket, timers, now, calendars), now, sla, calendars)


def is_history(ticket: TicketRecord) -> bool:
    """Imported as history, and not revived by live mail since."""
    return imported_at(ticket) is not None


def imported_at(ticket: TicketRecord) -> datetime | None:
    """When the ticket was imported as history (None: live, or revived since)."""
    timers = Timers.from_json(ticket.sla_data or {})
    return timers.history if timers is not None else None


def merged(survivor: TicketRecord, other: TicketRecord, other_ref: str, now: datetime, sla: SlaSettings,
           calendars: Calendars) -> tuple[TicketRecord, list[str]]:
    """`other` joins `survivor`: for each clock running on both, the survivor
    keeps the one that has used more working time — its customer has waited
    longer, so its deadline is the earlier — measured against the survivor's
    target and calendar (its severity stays). A clock paused or stopped on
    either side stays as the survivor has it. Returns the record and what was
    decided per clock (the clocks' log, `sla explain`, and the event)."""
    mine, theirs = load(survivor, sla, calendars), load(other, sla, calendars)
    said: list[str] = []
    for name in (FIRST_RESPONSE, RESOLUTION, NEXT_UPDATE):
        here, there = mine.get(name), theirs.get(name)
        if here is None or there is None or RUNNING not in (here.state, there.state):
            continue
        label = LABELS[name]
        if here.state != RUNNING or there.state != RUNNING:
            said.append(f"{label}: kept ({'not running here' if here.state != RUNNING else f'not running on {other_ref}'})")
            continue
        used_here, used_there = here.used(now, calendars), there.used(now, calendars)
        if used_there > used_here:
            taken = there.retarget(here.target, here.calendar, now, calendars)
            prefix = key_prefix(there)
            mine = replace(mine.with_timer(taken), done=mine.done + tuple(
                k for k in theirs.done if k.startswith(prefix + ".") and k not in mine.done))
            due = taken.when(1.0, calendars)
            said.append(f"{label}: from {other_ref} ({format_duration(used_there)} used there, "
                        f"{format_duration(used_here)} here), due {due.isoformat() if due else '-'}")
        else:
            said.append(f"{label}: kept ({format_duration(used_here)} used here, {format_duration(used_there)} "
                        f"on {other_ref})")
    mine = mine.noted(now, f"merged {other_ref} into this ticket: " + ("; ".join(said) or "no clock ran on both"))
    return store(survivor, mine, now, sla, calendars), said


def split_off(ticket: TicketRecord, arrived: datetime, now: datetime, source_ref: str, sla: SlaSettings,
              calendars: Calendars, history: datetime | None = None) -> TicketRecord:
    """A ticket split off `source_ref`: its clocks run from the moved
    message's arrival (the customer has waited since then), as a new ticket's would.
    `history`: when the source was imported as history (or this is history
    being imported): the new ticket is history too, or the sweep would announce
    milestones long past. The agent's #split mail stays on the source, so an
    answer in it is the source's first response, not this ticket's."""
    timers = deadlines.start(arrived, ticket.severity, sla)
    timers = _settle(ticket, timers, arrived, calendars)         # running since the arrival
    timers = timers.noted(arrived, f"started at the arrival of the message split off {source_ref}")
    said = (f"split off {source_ref}: the clocks run until an agent answers on this ticket (an answer in "
            f"the #split mail stays on {source_ref} and counts there)")
    if history is not None:
        timers = replace(timers, history=history)
        said += (f"; {source_ref} was imported as history ({history.isoformat(timespec='minutes')}), so this "
                 "ticket is too: its milestones are recorded, never announced")
    return store(ticket, timers.noted(now, said), now, sla, calendars)
