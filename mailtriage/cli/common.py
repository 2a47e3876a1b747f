"""What every command needs: the config, the clock, the App."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, time, timezone
from typing import Any

from mailtriage.app import App, Config, build_app, load_config
from mailtriage.clock import Clock, FixedClock, SystemClock, parse_instant
from mailtriage.errors import UsageError
from mailtriage.config.load import default_config_path


def config(args: argparse.Namespace) -> Config:
    path = args.config if args.config is not None else default_config_path()
    return load_config(path)


def clock(args: argparse.Namespace) -> Clock:
    if not args.now:
        return SystemClock()
    try:
        return FixedClock(parse_instant(args.now))
    except ValueError as exc:
        raise UsageError(f"--now {args.now!r}: not an ISO-8601 instant") from exc


def since(text: str | None) -> datetime | None:
    """`--since`: a date (midnight UTC) or an ISO-8601 instant; None when not given."""
    if not text:
        return None
    try:
        if len(text.strip()) == 10:
            return datetime.combine(datetime.fromisoformat(text.strip()).date(), time(0), tzinfo=timezone.utc)
        return parse_instant(text)
    except ValueError as exc:
        raise UsageError(f"--since {text!r}: not a date (YYYY-MM-DD) or ISO-8601 instant") from exc


def app(args: argparse.Namespace, auto_create: bool = True) -> App:
    return build_app(config(args), clock(args), auto_create=auto_create)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def find_ticket(session: Any, app: App, ref: str) -> Any:
    """The ticket called REF (`MT-42`, `42`), or a NotFound error."""
    from mailtriage.errors import NotFound
    from mailtriage.store.schema import Ticket
    from mailtriage.model import parse_ref

    number = parse_ref(ref, app.settings.ticket_prefix)
    ticket = session.get(Ticket, number) if number is not None else None
    if ticket is None:
        raise NotFound(f"no ticket {ref}")
    return ticket
