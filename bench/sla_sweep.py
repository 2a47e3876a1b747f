"""SLA sweep cost: `python bench/sla_sweep.py [--tickets N] [--due K]`.

Fills a fresh SQLite database with N open tickets (default 1,000,000) whose
next deadline lies in the future, times `sweep.run_once(app, now)` when none
is due, then makes K of them due (default 1,000) and times the sweep that
sends their warnings, and the empty sweep after it. That is done in rounds
(`--rounds`, default 4), other tickets each time: the first sweep also
compiles the templates and warms the caches a running daemon has warm, so it
is shown apart, and the figure is the median of the others. Prints a table and a
JSON line. The rows are real: each carries the timers `lifecycle.start`
writes, so the due ones go through the whole warning path (template,
outbox row, event).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mailtriage.app import build_app, load_config  # noqa: E402
from mailtriage.clock import FixedClock  # noqa: E402
from mailtriage.sla import lifecycle, sweep  # noqa: E402
from mailtriage.store import sweeprows  # noqa: E402
from mailtriage.model import TicketRecord  # noqa: E402
from report import print_report  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
CONFIG = """\
database: sqlite:///{db}
mailboxes:
  - {{name: support, address: support@example.test, queue: support}}
smtp_out: {{maildir: ./outbox}}
tiers:
  L1: {{notify: [l1-team@example.test]}}
  L2: {{notify: [l2-team@example.test]}}
  L3: {{notify: [l3-team@example.test]}}
  L4: {{notify: [vendor@partner.example]}}
calendars:
  office: {{timezone: Europe/Amsterdam, hours: {{mon-fri: "08:00-20:00"}}, holidays: NL}}
  always: {{timezone: UTC, hours: 24x7}}
sla:
  warn_at: 80%
  targets:
    S1: {{first_response: 15m, resolution: 1h, calendar: always}}
    S2: {{first_response: 30m, resolution: 2h, calendar: always}}
    S3: {{first_response: 1h, resolution: 3h, calendar: office}}
    S4: {{first_response: 4h, resolution: 3d, calendar: office}}
"""
COLUMNS = ("subject", "requester", "status", "severity", "tier", "queue", "tags", "mailbox", "created_at",
           "updated_at", "first_response_due", "resolution_due", "sla_state", "next_deadline", "sla_data")


def template(created: datetime, config) -> TicketRecord:  # type: ignore[no-untyped-def]
    """A ticket as `open_ticket` makes it, to copy its SLA columns from."""
    ticket = TicketRecord(id=0, subject="Printer on fire", requester="carla@customer.example", status="open",
                          severity="S1", tier="L1", queue="support", tags=(), assignee=None, mailbox="support",
                          created_at=created, updated_at=created)
    return lifecycle.start(ticket, created, config.settings.sla, config.calendars)


def sql_time(at: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def fill(app, count: int) -> float:  # type: ignore[no-untyped-def]
    """Insert `count` open tickets, none due; returns seconds taken."""
    fresh = template(NOW - timedelta(minutes=1), app.config)
    data = json.dumps(fresh.sla_data)
    created, fr_due, res_due = (sql_time(x) for x in (fresh.created_at, fresh.first_response_due,
                                                      fresh.resolution_due))
    rng = random.Random(42)
    placeholders = ", ".join("?" for _ in COLUMNS)
    insert = f"INSERT INTO tickets ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    start = time.perf_counter()
    raw = app.store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA synchronous=OFF")          # a bulk load, not ticket traffic
        chunk = 100_000
        for offset in range(0, count, chunk):
            # Next deadlines spread over the coming 30 days, none due yet.
            rows = [(f"Ticket {n}", f"c{n}@customer.example", "open", "S1", "L1", "support", "[]", "support",
                     created, created, fr_due, res_due, "ok",
                     sql_time(NOW + timedelta(seconds=rng.randint(60, 30 * 86400))), data)
                    for n in range(offset, min(offset + chunk, count))]
            cursor.executemany(insert, rows)
            raw.commit()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - start


def make_due(app, count: int, total: int, round_: int = 0) -> None:  # type: ignore[no-untyped-def]
    """Turn `count` random tickets into ones whose first-response warning has
    come; each round takes tickets no earlier round took."""
    due = template(NOW - timedelta(minutes=13), app.config)          # S1: the warning is at 12 minutes
    ids = random.Random(7).sample(range(1, total + 1), count * (round_ + 1))[count * round_:]
    raw = app.store.engine.raw_connection()
    try:
        raw.cursor().executemany(
            "UPDATE tickets SET created_at = ?, next_deadline = ?, sla_data = ? WHERE id = ?",
            [(sql_time(due.created_at), sql_time(due.next_deadline), json.dumps(due.sla_data), i) for i in ids])
        raw.commit()
    finally:
        raw.close()


def timed_sweeps(app, repeat: int) -> tuple[list[float], sweep.SweepResult]:  # type: ignore[no-untyped-def]
    times, result = [], sweep.SweepResult()
    for _ in range(repeat):
        start = time.perf_counter()
        result = sweep.run_once(app, NOW)
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=4,
                        help="due sweeps, each of --due other tickets: the first (cold) one is shown apart, "
                             "the median of the others is the figure")
    args = parser.parse_args()
    os.environ.pop("MAILTRIAGE_DATABASE", None)
    with tempfile.TemporaryDirectory(prefix="mt-bench-sla.") as tmp:
        root = Path(tmp)
        config_path = root / "mailtriage.yaml"
        config_path.write_text(CONFIG.format(db=root / "sla.db"))     # no rules:, templates:: the built-in ones
        app = build_app(load_config(config_path), FixedClock(NOW))
        try:
            results: dict[str, object] = {"open_tickets": args.tickets}
            results["fill_seconds"] = round(fill(app, args.tickets), 1)
            with app.store.engine.connect() as connection:
                query = sweeprows.due_query(NOW, sweep.BATCH).compile(app.store.engine,
                                                                   compile_kwargs={"literal_binds": True})
                plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}").fetchall()
            results["query_plan"] = "; ".join(str(row[-1]) for row in plan)
            sweep.run_once(app, NOW)                                         # warm up the connection pool
            idle, result = timed_sweeps(app, 50)
            assert result.tickets == 0, result
            results["sweep_none_due_ms_median"] = round(statistics.median(idle), 2)
            results["sweep_none_due_ms_max"] = round(max(idle), 2)
            busy = []
            for round_ in range(args.rounds):
                make_due(app, args.due, args.tickets, round_)
                [took], result = timed_sweeps(app, 1)
                assert (result.tickets, result.warnings) == (args.due, args.due), result
                busy.append(took)
            results["due_tickets"] = args.due
            results["sweep_due_rounds_ms"] = [round(took, 1) for took in busy]
            results["sweep_first_due_ms"] = round(busy[0], 1)       # templates compiled, caches filled
            results["sweep_due_ms"] = round(statistics.median(busy[1:] or busy), 1)
            results["sweep_due_ms_per_ticket"] = round(results["sweep_due_ms"] / max(args.due, 1), 3)
            after, result = timed_sweeps(app, 20)
            assert result.tickets == 0, result
            results["sweep_after_ms_median"] = round(statistics.median(after), 2)
        finally:
            app.store.close()
    print_report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
