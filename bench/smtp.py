"""SMTP listener benchmark: `python bench/smtp.py [--messages N] [--clients C] [--reconnect] [--pg URL]`.

Starts `mailtriage run` as a real process (the daemon is imported from
PYTHONPATH, so another tree can be measured the same way) with its SMTP
listener on a free port, on a fresh SQLite database (or, with `--pg
ADMIN_URL`, a fresh PostgreSQL database created on that server), the
acknowledgements written to the site's Maildir outbox. Then C client
threads (default 8, smtplib) each send N/C messages (default N = 1,000),
every message from its own sender and with its own Message-ID, so each one
opens a ticket and is acknowledged.

By default each client keeps one SMTP connection for all its messages (as
an MTA's connection cache does); `--reconnect` opens a new connection per
message (EHLO, MAIL, RCPT, DATA, QUIT each time).

Measures:

* rate: msg/s = N / wall time, from the first connection to the last 250;
* 250 latency: from the message's write (its text and the final dot in one
  write, TCP_NODELAY, as an MTA sends it) to the 250 reply (the message
  committed), per message: median, 99th percentile and maximum;
* all processed: seconds from the start until no raw message is pending
  any more (under load the listener acknowledges the committed bytes and
  processes them after: pipeline/group.py).

Then checks that the database holds exactly N raw messages and N tickets,
and sends the same N messages the same way to a bare aiosmtpd sink in this
process (a handler that answers 250 at once): the floor of the clients and
aiosmtpd on this machine, measured in the same run.
Prints a table and one JSON line (bench/report.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import smtplib
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import create_engine, text  # noqa: E402

from daemons import DaemonProcess  # noqa: E402
from helpers import eml, make_site  # noqa: E402
from report import print_report  # noqa: E402
from servers import free_port  # noqa: E402

RCPT = "support@example.test"


def message(client: int, i: int) -> tuple[str, bytes]:
    sender = f"c{client}-{i}@customer{client}.example"
    return sender, eml(f"Printer {i} of client {client} is jammed", sender=sender,
                       message_id=f"<bench-{client}-{i}@customer{client}.example>",
                       body=f"Hello,\n\nprinter {i} jams on every page.\n")


def timed_send(smtp: smtplib.SMTP, sender: str, raw: bytes) -> float:
    """MAIL, RCPT, DATA; the seconds from the final dot to the 250."""
    smtp.ehlo_or_helo_if_needed()
    code, reply = smtp.mail(sender)
    assert code == 250, (code, reply)
    code, reply = smtp.rcpt(RCPT)
    assert code == 250, (code, reply)
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    assert code == 354, (code, reply)
    body = raw.replace(b"\r\n.", b"\r\n..")                     # eml() writes CRLF already
    started = time.perf_counter()
    smtp.send((body if body.endswith(b"\r\n") else body + b"\r\n") + b".\r\n")   # one write, as an MTA's
    code, reply = smtp.getreply()
    took = time.perf_counter() - started
    assert code == 250, (code, reply)
    return took


def client(port: int, number: int, count: int, reconnect: bool, out: list[float], errors: list[str]) -> None:
    try:
        smtp = None
        for i in range(count):
            if smtp is None:
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # no Nagle wait on a reply
            out.append(timed_send(smtp, *message(number, i)))
            if reconnect:
                smtp.quit()
                smtp = None
        if smtp is not None:
            smtp.quit()
    except Exception as exc:  # noqa: BLE001 - reported, and the run fails
        errors.append(f"client {number}: {exc!r}")


def send_all(port: int, clients: int, per_client: int, reconnect: bool) -> tuple[float, list[float]]:
    """C clients at once, each sending `per_client` messages: (wall seconds, the 250 latencies)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    threads = [threading.Thread(target=client, args=(port, n, per_client, reconnect, latencies[n], errors))
               for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit("\n".join(errors))
    return wall, [s for one in latencies for s in one]


class Sink:
    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        return "250 OK"


def sink_rate(clients: int, per_client: int, reconnect: bool) -> float:
    """The floor: the same clients against an aiosmtpd server that stores nothing."""
    from aiosmtpd.controller import Controller

    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        wall, seconds = send_all(controller.port, clients, per_client, reconnect)
    finally:
        controller.stop()
    return len(seconds) / wall


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def fresh_pg(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"mt_bench_smtp_{uuid.uuid4().hex[:8]}"
    dsn = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg(admin_url: str, name: str) -> None:
    import psycopg

    dsn = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_rows(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        raws = conn.execute(text("SELECT count(*) FROM raw_messages")).scalar_one()
        tickets = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
    engine.dispose()
    return raws, tickets


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_processed(url: str, started: float, timeout: float = 600.0) -> float:
    """Seconds from `started` until no raw message is pending (each one has its ticket)."""
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if not conn.execute(text("SELECT count(*) FROM raw_messages WHERE state = 'pending'")).scalar_one():
                    return time.perf_counter() - started
            time.sleep(0.05)
        raise TimeoutError("messages still pending")
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="messages in all (N)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent SMTP clients (C)")
    parser.add_argument("--reconnect", action="store_true", help="a new connection per message")
    parser.add_argument("--pg", metavar="ADMIN_URL", help="PostgreSQL server to create a fresh database on")
    args = parser.parse_args()
    os.environ.pop("MAILTRIAGE_DATABASE", None)
    work = Path(tempfile.mkdtemp(prefix="mt-bench-smtp."))
    pg_name, database = None, None
    if args.pg:
        pg_name, database = fresh_pg(args.pg)
    daemon = None
    try:
        site = make_site(work / "site", smtp_in_port=free_port(), database=database)
        port = int(yaml.safe_load(site.config.read_text())["smtp_in"]["port"])
        url = database or f"sqlite:///{site.dir / 'mailtriage.db'}"
        daemon = DaemonProcess(site, work / "daemon.log").wait_ready()
        daemon.wait_log("listening for SMTP")
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as warm:      # imports, templates, caches
            for i in range(3):
                timed_send(warm, *message(999, i))
        per_client = args.messages // args.clients
        daemon_cpu, client_cpu = cpu_seconds(daemon.proc.pid), time.process_time()
        started = time.perf_counter()
        wall, seconds = send_all(port, args.clients, per_client, args.reconnect)
        daemon_cpu, client_cpu = cpu_seconds(daemon.proc.pid) - daemon_cpu, time.process_time() - client_cpu
        sent = len(seconds)
        processed = wait_processed(url, started)
        raws, tickets = count_rows(url)
        results: dict[str, object] = {
            "database": "postgresql" if args.pg else "sqlite",
            "clients": args.clients,
            "messages": sent,
            "connections": "one per message" if args.reconnect else "one per client",
            "wall_s": round(wall, 2),
            "rate_msgs_per_s": round(sent / wall, 1),
            "ack_250_median_ms": round(statistics.median(seconds) * 1000, 1),
            "ack_250_p99_ms": round(percentile(seconds, 0.99) * 1000, 1),
            "ack_250_max_ms": round(max(seconds) * 1000, 1),
            "all_processed_s": round(processed, 2),
            "daemon_cpu_ms_per_msg": round(daemon_cpu / sent * 1000, 2),      # while the clients sent
            "client_cpu_ms_per_msg": round(client_cpu / sent * 1000, 2),
            "sink_rate_msgs_per_s": round(sink_rate(args.clients, per_client, args.reconnect), 1),
            "raw_messages_stored": raws - 3,               # less the warm-up
            "tickets_opened": tickets - 3,
            "daemon_tree": os.environ.get("PYTHONPATH") or str(ROOT),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        }
    finally:
        if daemon is not None:
            daemon.close()
        if pg_name is not None:
            drop_pg(args.pg, pg_name)
        shutil.rmtree(work, ignore_errors=True)
    print_report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
