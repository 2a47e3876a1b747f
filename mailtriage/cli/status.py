"""`mailtriage status [--json]`: is mail flowing? From the database alone,
with or without a running daemon (it reads; it writes nothing).

Each component as the daemon last wrote it to its heartbeat row (a component
with no row yet is `unknown`), each IMAP mailbox's last fetch and last error,
the outbox (pending, failed, the oldest pending mail's age), the quarantine,
and the SLA board (open tickets due within the hour, and breached). Exit 0
when no component is failing, 1 when one is (a stopped daemon is not a
failure by itself: `daemon.last_heartbeat` says when one last wrote).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from mailtriage.cli import common
from mailtriage.health import facts
from mailtriage.health.state import State


def register(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser("status", help="is mail flowing? components, outbox, quarantine, SLA (exit 1: failing)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    app = common.app(args, auto_create=False)
    now = app.clock.now()
    with app.store.session() as session:
        rows = facts.heartbeats(session)
        heartbeat = facts.last_heartbeat(session)
        outbox = facts.outbox(session)
        quarantined = facts.quarantined(session)
        board = facts.sla_board(session, app.settings, app.config.calendars, now)
    states = {name: rows.get(name, State(name)) for name in facts.components(app.settings)}
    failing = [name for name, state in states.items() if state.ok is False]
    data: dict[str, Any] = {
        "status": "failing" if failing else "ok", "as_of": _iso(now), "failing": failing,
        "components": {name: state.as_dict() for name, state in states.items()},
        "mailboxes": {name.partition(":")[2]: {key: value for key, value in state.as_dict().items()
                                               if key in ("status", "last_success", "last_error_at", "last_error")}
                      for name, state in states.items() if name.startswith("mailbox:")},
        "outbox": {"pending": outbox.pending, "failed": outbox.failed,
                   "oldest_pending_age_seconds": _age(outbox.oldest_pending, now)},
        "quarantine": quarantined,
        "sla": {"due_within_hour": board.due_soon_count, "breached": board.breached_count,
                "due_soon_tickets": board.due_soon, "breached_tickets": board.breached},
        "daemon": {"last_heartbeat": _iso(heartbeat), "age_seconds": _age(heartbeat, now)},
    }
    if args.json:
        common.print_json(data)
    else:
        print(_text(data))
    return 1 if failing else 0


def _text(data: dict[str, Any]) -> str:
    lines = [f"mailtriage status: {data['status']} (as of {data['as_of']})", ""]
    for name, state in data["components"].items():
        detail = (f"since {state['failing_since']}: {state['last_error']}" if state["status"] == "failing"
                  else f"last worked {state['last_success']}" if state["last_success"] else "no report yet")
        lines.append(f"  {name:<22} {state['status']:<8} {detail}")
    outbox, sla, daemon = data["outbox"], data["sla"], data["daemon"]
    oldest = outbox["oldest_pending_age_seconds"]
    lines += ["", f"outbox      {outbox['pending']} pending"
              + (f" (the oldest for {_duration(oldest)})" if oldest is not None else "")
              + f", {outbox['failed']} failed",
              f"quarantine  {data['quarantine']}",
              f"SLA         {sla['due_within_hour']} due within the hour, {sla['breached']} breached"
              + (": " + ", ".join(t["ref"] for t in sla["breached_tickets"][:10]) if sla["breached"] else ""),
              "daemon      " + (f"last heartbeat {daemon['last_heartbeat']} ({_duration(daemon['age_seconds'])} ago)"
                                if daemon["last_heartbeat"] else "no heartbeat written yet")]
    return "\n".join(lines)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat(timespec="seconds")


def _age(when: datetime | None, now: datetime) -> float | None:
    return None if when is None else round(max((now - when).total_seconds(), 0.0), 1)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    return f"{whole // 60} min" if whole < 7200 else f"{whole // 3600} h {whole % 3600 // 60} min"
