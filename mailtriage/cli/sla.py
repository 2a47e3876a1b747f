"""SLA commands: sla tick, sla explain, report sla, digest."""

from __future__ import annotations

import argparse

from sqlalchemy import exists, select

from mailtriage.cli import common
from mailtriage.errors import UsageError
from mailtriage.sla import digest, lifecycle, sweep
from mailtriage.sla.explain import explain, explain_text
from mailtriage.sla.report import Facts, build, render_html, render_table
from mailtriage.store.schema import Event, Message, Ticket
from mailtriage.model import ticket_ref
from mailtriage.store.records import record_of


def register(sub: argparse._SubParsersAction) -> None:
    sla = sub.add_parser("sla", help="SLA timers: sweep, explain").add_subparsers(dest="sub", required=True)
    tick = sla.add_parser("tick", help="one SLA sweep: send due warnings and escalations, then exit")
    tick.set_defaults(handler=cmd_tick)
    why = sla.add_parser("explain", help="how each deadline of a ticket was computed")
    why.add_argument("ref")
    why.add_argument("--json", action="store_true")
    why.set_defaults(handler=cmd_explain)

    report = sub.add_parser("report", help="reports").add_subparsers(dest="sub", required=True)
    compliance = report.add_parser("sla", help="SLA compliance per severity, tier and queue")
    compliance.add_argument("--since", help="tickets created on or after this date (YYYY-MM-DD) or instant")
    compliance.add_argument("--format", choices=("table", "json", "html"), default="table")
    compliance.set_defaults(handler=cmd_report)

    daily = sub.add_parser("digest", help="send today's daily digest now (once a day), or show it (--dry-run)")
    daily.add_argument("--dry-run", action="store_true", help="print the digest as it would be now; "
                       "store and send nothing")
    daily.set_defaults(handler=cmd_digest)


def cmd_tick(args: argparse.Namespace) -> int:
    app = common.app(args)
    result = sweep.run_once(app, app.clock.now())
    print(result.line())
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    app = common.app(args)
    now = app.clock.now()
    prefix = app.settings.ticket_prefix
    with app.store.session() as session:
        ticket = common.find_ticket(session, app, args.ref)
        head = {"ref": ticket_ref(prefix, ticket.id), "subject": ticket.subject, "status": ticket.status,
                "tier": ticket.tier, "sla_state": ticket.sla_state}
        timers = lifecycle.load(record_of(ticket), app.settings.sla, app.config.calendars)
    data = explain(head, timers, app.config.calendars, app.settings.sla.warn_at, now)
    if args.json:
        common.print_json(data)
    else:
        print(explain_text(data))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    app = common.app(args)
    since = common.since(args.since)
    suggested = exists().where(Event.ticket_id == Ticket.id, Event.type == "kb-suggested")
    answered = exists().where(Message.ticket_id == Ticket.id, Message.kind == "agent")
    query = select(Ticket.severity, Ticket.tier, Ticket.queue, Ticket.first_responded_at, Ticket.resolved_at,
                   Ticket.sla_data, suggested, answered)
    if since is not None:
        query = query.where(Ticket.created_at >= since)
    with app.store.session() as session:
        rows = (Facts(severity, tier, queue, responded is not None, resolved is not None, data or {},
                      bool(kb), bool(replied))
                for severity, tier, queue, responded, resolved, data, kb, replied
                in session.execute(query.execution_options(yield_per=1000)))
        report = build(rows, app.config.calendars, app.clock.now(), since)
    if args.format == "json":
        common.print_json(report)
    elif args.format == "html":
        print(render_html(report, app.config.templates), end="")
    else:
        print(render_table(report))
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    app = common.app(args)
    if app.settings.digest is None:
        raise UsageError("the config has no digest: (digest: {to: [lead@example.test], at: \"08:00\", "
                         "calendar: office})")
    result, text = digest.run_once(app, app.clock.now(), any_time=True, dry_run=args.dry_run)
    if args.dry_run:
        print(text, end="" if text.endswith("\n") else "\n")
        return 0
    print(result.line() + ("; it goes with the next outbox run (the daemon's, or `mailtriage outbox flush`)"
                           if result.sent else ""))
    return 0
