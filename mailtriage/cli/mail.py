"""Mail commands: ingest, import, quarantine, outbox."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from tqdm import tqdm

from mailtriage import pipeline
from mailtriage.cli import common, pipe
from mailtriage.errors import NotFound, TemporaryFailure, UsageError
from mailtriage.ingest import mailbox
from mailtriage.model import OutboxStatus, RawState
from mailtriage.notify import outbox
from mailtriage.store.schema import OutboxRow, RawMessage
from mailtriage.cli.views import iso


def register(sub: argparse._SubParsersAction) -> None:
    ingest = sub.add_parser("ingest", help="process raw messages from files, or one from stdin (MTA pipe)")
    ingest.add_argument("files", nargs="*", type=Path)
    ingest.add_argument("--rcpt", action="append", default=[], help="envelope recipient (from the MTA)")
    ingest.set_defaults(handler=cmd_ingest)

    imp = sub.add_parser("import", help="bulk import of a Maildir, mbox file or folder of .eml files")
    imp.add_argument("path", type=Path)
    imp.add_argument("--acknowledge", action="store_true",
                     help="send acknowledgements for new tickets (off: importing history mails nobody)")
    imp.add_argument("--no-progress", action="store_true")
    imp.set_defaults(handler=cmd_import)

    quarantine = sub.add_parser("quarantine", help="messages that could not be processed").add_subparsers(
        dest="sub", required=True)
    qlist = quarantine.add_parser("list", help="quarantined messages with the reason")
    qlist.add_argument("--json", action="store_true")
    qlist.set_defaults(handler=cmd_quarantine_list)
    retry = quarantine.add_parser("retry", help="process quarantined messages again")
    retry.add_argument("id", nargs="?", type=int)
    retry.add_argument("--all", action="store_true")
    retry.set_defaults(handler=cmd_quarantine_retry)

    box = sub.add_parser("outbox", help="outgoing mail").add_subparsers(dest="sub", required=True)
    olist = box.add_parser("list", help="pending outbound mail")
    olist.add_argument("--json", action="store_true")
    olist.add_argument("--all", action="store_true", help="also sent and failed mail")
    olist.set_defaults(handler=cmd_outbox_list)
    box.add_parser("flush", help="send what is due").set_defaults(handler=cmd_outbox_flush)
    oretry = box.add_parser("retry", help="put failed mail back to pending (due now, attempts counted afresh)")
    oretry.add_argument("ids", nargs="*", type=int, metavar="ID")
    oretry.add_argument("--failed", action="store_true", help="all failed mail")
    oretry.set_defaults(handler=cmd_outbox_retry)


def cmd_ingest(args: argparse.Namespace) -> int:
    if not args.files:
        return pipe.ingest(args)              # one message from stdin: the MTA's pipe
    app = common.app(args)
    now = app.clock.now()
    sources = [(f"file:{p}", p.read_bytes()) for p in args.files]
    status = 0
    for source, raw in sources:
        try:
            outcome = pipeline.process(app, raw, now, source=source, envelope_rcpts=tuple(
                a.lower() for a in args.rcpt))
        except TemporaryFailure as exc:
            print(f"- tempfail:{exc}", file=sys.stderr)
            status = TemporaryFailure.exit_code
            continue
        print(outcome.line(), flush=True)
    return status


def cmd_import(args: argparse.Namespace) -> int:
    app = common.app(args)
    path: Path = args.path
    total = mailbox.count(path)
    counts: dict[str, int] = {}
    bar = tqdm(total=total, unit="msg", disable=args.no_progress or None, file=sys.stderr)
    try:
        for outcome in pipeline.process_many(app, mailbox.messages(path), app.clock.now,
                                             acknowledge=args.acknowledge):
            kind = outcome.action.partition(":")[0]
            counts[kind] = counts.get(kind, 0) + 1
            bar.update(1)
    finally:
        bar.close()
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("new", "reply", "duplicate", "ignored", "quarantined"))
    print(f"{path}: {sum(counts.values())} messages: {summary}")
    return 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    app = common.app(args)
    with app.store.session() as session:
        rows = list(session.scalars(select(RawMessage).where(RawMessage.state == RawState.QUARANTINED)
                                    .order_by(RawMessage.id)))
        data = [{"id": r.id, "received_at": iso(r.received_at), "source": r.source, "size": r.size,
                 "reason": r.reason, "attempts": r.attempts,
                 "error": (r.error or "").strip().splitlines()[-1:] and (r.error or "").strip().splitlines()[-1]}
                for r in rows]
    if args.json:
        common.print_json(data)
    else:
        for row in data:
            print(f"{row['id']:<6} {row['received_at']} {row['reason']:<24} {row['source']}  {row['error'] or ''}")
    return 0


def cmd_quarantine_retry(args: argparse.Namespace) -> int:
    if args.id is None and not args.all:
        raise UsageError("quarantine retry needs an ID or --all")
    app = common.app(args)
    with app.store.session() as session:
        query = select(RawMessage.id).where(RawMessage.state == RawState.QUARANTINED)
        if not args.all:
            query = query.where(RawMessage.id == args.id)
        ids = list(session.scalars(query.order_by(RawMessage.id)))
    if not ids and not args.all:
        raise NotFound(f"no quarantined message {args.id}")
    for raw_id in ids:
        print(f"{raw_id} " + pipeline.process_stored(app, raw_id, app.clock.now()).line())
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    app = common.app(args)
    with app.store.session() as session:
        query = select(OutboxRow).order_by(OutboxRow.id)
        if not args.all:
            query = query.where(OutboxRow.status.in_(outbox.UNSENT))
        data: list[dict[str, Any]] = [
                {"id": r.id, "ticket": f"{app.settings.ticket_prefix}-{r.ticket_id}" if r.ticket_id else None,
                 "kind": r.kind, "message_id": r.message_id, "to": list(r.recipients), "status": r.status,
                 "due_at": iso(r.due_at), "attempts": r.attempts, "last_error": r.last_error,
                 "deliveries": r.deliveries or {}}
                for r in session.scalars(query)]
    if args.json:
        common.print_json(data)
    else:
        for row in data:
            print(f"{row['id']:<6} {row['status']:<8} {row['ticket'] or '-':<10} {row['kind']:<16} "
                  f"{', '.join(row['to'])}  due {row['due_at']}  {row['last_error'] or ''}")
    return 0


def cmd_outbox_flush(args: argparse.Namespace) -> int:
    app = common.app(args)
    result = outbox.run_once(app, app.clock.now(), limit=10_000)
    print(f"sent {result.sent}, deferred {result.deferred}, failed {result.failed}")
    if result.relay_down is not None:
        print(f"the relay is unavailable ({result.relay_down}): pending mail waits until "
              f"{iso(result.relay_back_at)}")
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    """One line per mail; exit 2 when an ID is no outbox row (the others are still retried)."""
    if bool(args.ids) == args.failed:
        raise UsageError("outbox retry needs IDs or --failed (not both)")
    app = common.app(args)
    done = outbox.retry_failed(app.store.sessions, args.ids or None, app.clock.now())
    for row in done:
        if row.status == OutboxStatus.FAILED:
            print(f"{row.id} pending {row.kind} to {', '.join(row.recipients)}")
        else:
            print(f"{row.id} {row.status} {row.kind}: not failed, left as it is")
    unknown = sorted(set(args.ids) - {row.id for row in done})
    for missing in unknown:
        print(f"{missing}: no such outbox mail", file=sys.stderr)
    return NotFound.exit_code if unknown else 0
