"""Three `mailtriage run` daemons, one PostgreSQL, one Dovecot mailbox.

One daemon watches the folder (it holds the folder's advisory lock), the
others stand by; all three send the outbox (FOR UPDATE SKIP LOCKED) and run
the sweep. The watcher is killed with SIGKILL in the middle of a burst: a
standing-by daemon takes the folder over within seconds, and every message
is still ticketed once and acknowledged once.
"""

from __future__ import annotations

import signal
import time

import psycopg
import pytest

from daemons import daemons, imap_site  # noqa: F401  (daemons: the fixture)
from helpers import eml
from pg import libpq_dsn
from servers import wait_for

USER = "support@example.test"
BURST = 60
WATCHING = "support/INBOX: connected; waiting with IDLE"


@pytest.fixture
def support(dovecot):
    dovecot.reset(USER)
    return dovecot


def customer(i: int) -> bytes:
    return eml(f"Question {i}", sender=f"c{i}@customer.example", message_id=f"<scale{i}@customer.example>")


def acks(sink) -> dict[str, int]:  # type: ignore[no-untyped-def]
    counts: dict[str, int] = {}
    for captured in sink:
        for rcpt in captured.rcpt_tos:
            if rcpt.endswith("@customer.example"):
                counts[rcpt] = counts.get(rcpt, 0) + 1
    return counts


def test_three_daemons_share_one_database_and_survive_a_sigkill(
        tmp_path, support, smtp_sink, smtp_sink_control, daemons, pg_url):
    dsn = libpq_dsn(pg_url)

    def scalar(sql: str) -> int:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute(sql).fetchone()[0]  # type: ignore[index]

    # Three sites (each its own SMTP listener port), one database.
    sites = [imap_site(tmp_path / f"site{n}", support, database=pg_url) for n in range(3)]
    procs = [daemons(site).wait_ready(timeout=30) for site in sites]
    wait_for(lambda: sum(WATCHING in p.log() for p in procs) == 1
             and sum("standing by" in p.log() for p in procs) == 2, timeout=20)

    for i in range(BURST // 2):
        support.deliver(USER, customer(i))
    wait_for(lambda: len(acks(smtp_sink)) >= 5, timeout=30)       # acknowledgements are flowing …
    smtp_sink_control.fail_next(10**6)                              # … then the relay refuses (451), so no
    wait_for(lambda: scalar("SELECT count(*) FROM outbox WHERE status = 'sent'") == len(smtp_sink),
             timeout=15)                                            # relay 250 is unrecorded at the kill
    for i in range(BURST // 2, BURST):
        support.deliver(USER, customer(i))
    wait_for(lambda: scalar("SELECT count(*) FROM raw_messages") >= BURST // 2 + 5, timeout=30)

    [watcher] = [p for p in procs if WATCHING in p.log()]
    # Usually no row is mid-send (the relay refuses, rows wait for their retry);
    # if one is, its lease delays it, below.
    wait_for(lambda: scalar("SELECT count(*) FROM outbox WHERE status = 'sending'") == 0, timeout=10)
    watcher.proc.send_signal(signal.SIGKILL)                        # mid-burst
    watcher.proc.wait(10)
    killed_at = time.monotonic()
    smtp_sink_control.fail_next(0)
    survivors = [p for p in procs if p is not watcher]
    wait_for(lambda: any("taking over the folder" in p.log() for p in survivors), timeout=15)
    takeover = time.monotonic() - killed_at
    assert takeover < 10, f"the folder was taken over after {takeover:.1f} s"

    # A row the killed daemon had claimed (`sending`: it may have reached the
    # relay) is sent again only when its lease ends (15 s in these sites).
    try:
        wait_for(lambda: len(acks(smtp_sink)) == BURST, timeout=90)
    except TimeoutError:
        states = scalar("SELECT string_agg(state || ':' || attempts, ',') FROM raw_messages")
        logs = "\n".join(p.log()[-3000:] for p in survivors)
        raise AssertionError(f"{len(acks(smtp_sink))} of {BURST} acknowledged; raw {states}; logs:\n{logs}") from None
    wait_for(lambda: scalar("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')") == 0,
             timeout=30)
    assert set(acks(smtp_sink).values()) == {1}                     # acknowledged once each
    assert len([c for c in smtp_sink if any(r.endswith("@customer.example") for r in c.rcpt_tos)]) == BURST
    assert scalar("SELECT count(*) FROM raw_messages") == BURST
    assert scalar("SELECT count(*) FROM raw_messages WHERE state <> 'processed'") == 0
    assert scalar("SELECT count(*) FROM tickets") == BURST          # ticketed once each
    assert scalar("SELECT count(DISTINCT message_id) FROM messages") == BURST
    assert scalar("SELECT count(*) FROM messages") == BURST
    assert scalar("SELECT count(*) FROM outbox WHERE kind = 'acknowledgement'") == BURST
    assert scalar("SELECT count(DISTINCT ticket_id) FROM outbox WHERE kind = 'acknowledgement'") == BURST
