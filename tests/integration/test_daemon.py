"""`mailtriage run` as a real process: the real Dovecot, the aiosmtpd sink,
smtplib as the MTA. Nothing lost, nothing doubled, whatever happens to it."""

from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import yaml

from daemons import PASSWORD_ENV, daemons, imap_site  # noqa: F401  (daemons: the fixture)
from helpers import eml, make_site
from servers import SMTP_PORT, free_port, wait_for

USER = "support@example.test"


@pytest.fixture
def support(dovecot):
    dovecot.reset(USER)
    return dovecot


def db(site) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    return sqlite3.connect(site.dir / "mailtriage.db", timeout=10)


def scalar(site, sql: str) -> int:  # type: ignore[no-untyped-def]
    with db(site) as conn:
        return conn.execute(sql).fetchone()[0]


def acks(sink) -> Counter:  # type: ignore[no-untyped-def]
    """Acknowledgements per customer (agent notices to the team are not counted)."""
    return Counter(r for c in sink for r in c.rcpt_tos if r.endswith("@customer.example"))


def outbox_drained(site) -> bool:  # type: ignore[no-untyped-def]
    return scalar(site, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')") == 0


def customer(i: int, prefix: str = "m") -> bytes:
    return eml(f"Question {i}", sender=f"c{i}@customer.example", message_id=f"<{prefix}{i}@customer.example>")


def test_mail_in_the_inbox_is_acknowledged_through_idle(tmp_path, support, smtp_sink, daemons, database_url):
    site = imap_site(tmp_path / "site", support, poll="1h", database=database_url)   # no poll tick: only IDLE
    daemon = daemons(site).wait_ready()
    daemon.wait_log("support/INBOX: connected; waiting with IDLE")
    support.deliver(USER, eml("Printer on fire", sender="Carla <carla@customer.example>",
                              message_id="<idle-1@customer.example>"))
    wait_for(lambda: acks(smtp_sink), timeout=10)
    [ack] = [c for c in smtp_sink if c.rcpt_tos == ["carla@customer.example"]]
    assert ack.msg["In-Reply-To"] == "<idle-1@customer.example>"
    assert "[MT-1]" in ack.msg["Subject"] and ack.msg["Auto-Submitted"] == "auto-replied"
    # Logs say which mailbox, Message-ID and ticket a line is about. The "sent"
    # line is written after the relay's 250, so it may trail the sink a little.
    daemon.wait_log("imap support/INBOX uid 1 <idle-1@customer.example>: MT-1 new")
    daemon.wait_log(f"(MT-1, acknowledgement {ack.msg['Message-ID']}): sent to carla@customer.example")


def test_without_idle_the_mailbox_is_polled_at_poll_interval(tmp_path, support, smtp_sink, daemons):
    site = imap_site(tmp_path / "site", support, idle=False, poll="1s")
    daemon = daemons(site).wait_ready()
    daemon.wait_log("support/INBOX: connected; polling every 1 s")
    support.deliver(USER, customer(1, "poll"))
    wait_for(lambda: acks(smtp_sink), timeout=10)
    assert "imap support/INBOX uid 1 <poll1@customer.example>: MT-1 new" in daemon.log()
    assert "waiting with IDLE" not in daemon.log()


def test_killed_half_way_every_message_is_taken_once_and_acknowledged_once(
        tmp_path, support, smtp_sink, smtp_sink_control, daemons):
    site = imap_site(tmp_path / "site", support)
    first = daemons(site).wait_ready()
    for i in range(25):
        support.deliver(USER, customer(i))
    wait_for(lambda: len(acks(smtp_sink)) >= 5, timeout=30)          # acknowledgements are flowing …
    smtp_sink_control.fail_next(10**6)                                 # … then the relay refuses (451), so
    wait_for(lambda: scalar(site, "SELECT count(*) FROM outbox WHERE status = 'sent'") == len(smtp_sink))
    for i in range(25, 50):                                            # no relay 250 is unrecorded at the kill
        support.deliver(USER, customer(i))
    wait_for(lambda: scalar(site, "SELECT count(*) FROM raw_messages") >= 30, timeout=30)
    first.proc.send_signal(signal.SIGKILL)                             # half-way through the second batch
    first.proc.wait(10)
    taken_before = scalar(site, "SELECT count(*) FROM raw_messages")
    assert taken_before < 50 or scalar(site, "SELECT count(*) FROM raw_messages WHERE state='pending'")

    smtp_sink_control.fail_next(0)
    daemons(site).wait_ready()
    wait_for(lambda: len(acks(smtp_sink)) == 50, timeout=60)
    wait_for(lambda: outbox_drained(site), timeout=30)
    assert set(acks(smtp_sink).values()) == {1}                        # exactly one each
    assert scalar(site, "SELECT count(*) FROM tickets") == 50
    assert scalar(site, "SELECT count(*) FROM raw_messages") == 50
    assert scalar(site, "SELECT count(*) FROM messages") == 50
    assert scalar(site, "SELECT count(*) FROM raw_messages WHERE state <> 'processed'") == 0


def test_the_daemon_reconnects_after_dovecot_restarts_under_it(tmp_path, support, smtp_sink, daemons):
    site = imap_site(tmp_path / "site", support)
    daemon = daemons(site).wait_ready()
    support.deliver(USER, customer(1))
    wait_for(lambda: acks(smtp_sink), timeout=10)

    restart_hard(support)
    support.deliver(USER, customer(2))
    wait_for(lambda: len(acks(smtp_sink)) == 2, timeout=30)
    log = daemon.log()
    assert log.count("retrying with backoff") == 1                     # one line per outage, not per retry
    assert "working again after" in log
    assert set(acks(smtp_sink).values()) == {1}


def restart_hard(dovecot) -> None:  # type: ignore[no-untyped-def]
    """Stop Dovecot with its client connections (the master's SIGTERM leaves the
    imap processes of logged-in clients running), then start it again."""
    children = [pid for pid in _child_pids(dovecot.proc.pid)]
    try:
        dovecot.stop()
        for pid in children:                     # Dovecot's own children, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    finally:
        dovecot.start()


def _child_pids(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(entry.name))
    return pids


def test_a_refusing_relay_delays_acknowledgements_but_loses_and_doubles_none(
        tmp_path, support, smtp_sink, smtp_sink_control, daemons):
    site = imap_site(tmp_path / "site", support)
    smtp_sink_control.fail_next(4)
    daemon = daemons(site).wait_ready()
    for i in range(3):
        support.deliver(USER, customer(i, "r"))
    wait_for(lambda: len(acks(smtp_sink)) == 3, timeout=30)
    wait_for(lambda: outbox_drained(site), timeout=30)
    assert set(acks(smtp_sink).values()) == {1}
    assert "deferred (attempt 1" in daemon.log()
    assert scalar(site, "SELECT count(*) FROM outbox WHERE status = 'failed'") == 0


def test_a_row_left_mid_send_by_a_dead_daemon_is_sent_once_after_restart(tmp_path, smtp_sink, daemons):
    site = make_site(tmp_path / "site", smtp_in_port=free_port(),
                     smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}")
    site.write("a.eml", "").write_bytes(customer(7, "left"))
    assert site.ingest(site.dir / "a.eml") == ["MT-1 new"]
    with db(site) as conn:                     # as if a daemon claimed it and died before the relay answered
        conn.execute("UPDATE outbox SET status = 'sending', attempts = 1, due_at = '2999-01-01 00:00:00'")
    daemon = daemons(site).wait_ready()
    wait_for(lambda: acks(smtp_sink), timeout=15)
    wait_for(lambda: outbox_drained(site), timeout=15)
    assert acks(smtp_sink) == {"c7@customer.example": 1}
    assert "were being sent when the last daemon stopped" in daemon.log()


def test_sigterm_stops_the_daemon_within_seconds(tmp_path, support, smtp_sink, daemons):
    site = imap_site(tmp_path / "site", support)
    daemon = daemons(site).wait_ready()
    daemon.wait_log("waiting with IDLE")
    assert daemon.stop() < 3.0
    assert daemon.proc.returncode == 0
    assert "mailtriage daemon stopped" in daemon.log()


def test_sighup_swaps_in_a_valid_config_and_keeps_an_invalid_one_out(tmp_path, daemons):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    port = yaml.safe_load(site.config.read_text())["smtp_in"]["port"]
    daemon = daemons(site).wait_ready()
    assert rcpt(port, "sales@example.test") == 550

    config = yaml.safe_load(site.config.read_text())
    config["mailboxes"].append({"name": "sales", "address": "sales@example.test", "queue": "sales"})
    site.config.write_text(yaml.safe_dump(config, sort_keys=False))
    daemon.send(signal.SIGHUP)
    daemon.wait_log("configuration reloaded")
    assert rcpt(port, "sales@example.test") == 250

    config["mailboxes"].append({"name": "broken", "address": "not an address"})
    site.config.write_text(yaml.safe_dump(config, sort_keys=False))
    daemon.send(signal.SIGHUP)
    daemon.wait_log("does not validate; keeping the running configuration")
    assert rcpt(port, "sales@example.test") == 250
    assert daemon.proc.poll() is None


def rcpt(port: int, address: str) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("anna@customer.example")
        return smtp.rcpt(address)[0]


def test_a_second_daemon_on_the_same_sqlite_database_is_refused(tmp_path, daemons):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    first = daemons(site).wait_ready()
    second = daemons(site)
    assert second.proc.wait(30) == 2
    assert "another mailtriage daemon (pid " in second.log() and "already running" in second.log()
    assert first.proc.poll() is None


def test_a_missing_imap_password_stops_the_start_with_a_config_error(tmp_path, dovecot, daemons):
    site = imap_site(tmp_path / "site", dovecot)
    daemon = daemons(site, env={PASSWORD_ENV: None})
    assert daemon.proc.wait(30) == 2
    assert f"mailbox support: {PASSWORD_ENV} is not set" in daemon.log()
