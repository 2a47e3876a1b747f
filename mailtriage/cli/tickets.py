"""Ticket commands: tickets list, tickets show."""

from __future__ import annotations

import argparse

from sqlalchemy import select

from mailtriage.cli import common
from mailtriage.errors import UsageError
from mailtriage.model import Severity, Status
from mailtriage.store.schema import Ticket
from mailtriage.cli.views import ticket_json, ticket_line, ticket_text


def register(sub: argparse._SubParsersAction) -> None:
    tickets = sub.add_parser("tickets", help="list and show tickets").add_subparsers(dest="sub", required=True)
    listing = tickets.add_parser("list", help="one ticket per line, or a JSON array")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--status", help="new, open, pending, resolved, closed (comma-separated)")
    listing.add_argument("--severity", help="S1..S4 (comma-separated)")
    listing.add_argument("--queue")
    listing.set_defaults(handler=cmd_list)
    show = tickets.add_parser("show", help="one ticket with its messages and events")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)


def cmd_list(args: argparse.Namespace) -> int:
    statuses = _choices("--status", args.status and args.status.lower(), [s.value for s in Status])
    severities = _choices("--severity", args.severity and args.severity.upper(), [s.value for s in Severity])
    app = common.app(args)
    prefix = app.settings.ticket_prefix
    query = select(Ticket).order_by(Ticket.id)
    if statuses:
        query = query.where(Ticket.status.in_(statuses))
    if severities:
        query = query.where(Ticket.severity.in_(severities))
    if args.queue:
        query = query.where(Ticket.queue == args.queue)
    with app.store.session() as session:
        found = list(session.scalars(query))
        if args.json:
            common.print_json([ticket_json(t, prefix, full=False) for t in found])
        else:
            for ticket in found:
                print(ticket_line(ticket, prefix))
    return 0


def _choices(option: str, given: str | None, valid: list[str]) -> list[str]:
    """A comma-separated filter; a value that is none of `valid` is a usage
    error (a typo would otherwise list nothing, as if nothing matched)."""
    values = [v.strip() for v in given.split(",")] if given else []
    wrong = [v for v in values if v not in valid]
    if wrong:
        raise UsageError(f"{option} {','.join(wrong)}: not one of {', '.join(valid)}")
    return values


def cmd_show(args: argparse.Namespace) -> int:
    app = common.app(args)
    prefix = app.settings.ticket_prefix
    with app.store.session() as session:
        ticket = common.find_ticket(session, app, args.ref)
        data = ticket_json(ticket, prefix)
    if args.json:
        common.print_json(data)
    else:
        print(ticket_text(data))
    return 0
