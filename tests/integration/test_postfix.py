"""A real Postfix hands mail to `mailtriage ingest` through pipe(8): a database
outage or a broken rules file keeps the message in Postfix's queue, no bounce
reaches the customer, and once the fault is mended one `postqueue -f`
tickets it exactly once.

The control shows why the pipe's one line starts with a status code: Postfix
maps a bare exit 78 (EX_CONFIG) to 5.3.5 and bounces; a leading 4.X.X in the
command's output takes precedence over the exit status (pipe(8), DIAGNOSTICS).
"""

from __future__ import annotations

import contextlib
import os

from helpers import eml
from servers import wait_for

CARLA = "Carla <carla@customer.test>"


def ticketed(postfix, subject: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [t for t in postfix.site.tickets() if t["subject"] == subject]


@contextlib.contextmanager
def no_bounce(postfix):  # type: ignore[no-untyped-def]
    """Nothing bounced while the block ran: not in the log, not in the queue, not in carla's mailbox."""
    log, mails = len(postfix.log()), len(postfix.mailbox("carla"))
    yield
    assert "status=bounced" not in postfix.log()[log:]
    assert [m for m in postfix.queue() if m["sender"] == ""] == []
    assert postfix.mailbox("carla")[mails:] == []


@contextlib.contextmanager
def database_gone(postfix):  # type: ignore[no-untyped-def]
    """The SQLite database's folder disappears (an unmounted volume), then comes back."""
    folder = postfix.site.database_dir
    away = folder.with_name("db.away")
    os.rename(folder, away)
    try:
        yield
    finally:
        os.rename(away, folder)


@contextlib.contextmanager
def rules_broken(postfix):  # type: ignore[no-untyped-def]
    """A typo in rules.yaml (`whne:` for `when:`), then the fix."""
    rules = postfix.site.dir / "rules.yaml"
    good = rules.read_text()
    rules.write_text(good.replace("    when:", "    whne:", 1))
    try:
        yield rules
    finally:
        rules.write_text(good)


def deferred_reason(postfix, queue_id: str) -> str:  # type: ignore[no-untyped-def]
    [queued] = [m for m in postfix.queue() if m["queue_id"] == queue_id]
    assert queued["queue_name"] == "deferred"
    return queued["recipients"][0]["delay_reason"]


def flushed_and_delivered(postfix, queue_id: str) -> None:  # type: ignore[no-untyped-def]
    postfix.flush()
    line = postfix.wait_delivery(queue_id, "sent", count=2)
    assert "delivered via mailtriage service" in line
    wait_for(lambda: all(m["queue_id"] != queue_id for m in postfix.queue()), timeout=30)


def test_a_database_outage_defers_the_mail_and_a_flush_tickets_it_once(postfix_pipe):
    postfix = postfix_pipe
    with no_bounce(postfix):
        with database_gone(postfix):
            queue_id = postfix.send(eml("VPN down during the outage", sender=CARLA,
                                        message_id="<outage-1@customer.test>"))
            line = postfix.wait_delivery(queue_id, "deferred")
            assert "relay=mailtriage" in line and "dsn=4.3.0" in line
            reason = deferred_reason(postfix, queue_id)
            assert reason.startswith("mailtriage: temporary failure, try again later: database unreachable")
            assert "Traceback" not in postfix.log()
        flushed_and_delivered(postfix, queue_id)
    [ticket] = ticketed(postfix, "VPN down during the outage")
    assert ticket["requester"] == "carla@customer.test"
    shown = postfix.site.cli("tickets", "show", ticket["ref"], "--json")
    assert shown.count('"direction": "in"') == 1


def test_a_broken_rules_file_defers_the_mail_and_the_fix_tickets_it_once(postfix_pipe):
    postfix = postfix_pipe
    with no_bounce(postfix):
        with rules_broken(postfix) as rules:
            queue_id = postfix.send(eml("Printer on fire after the rules change", sender=CARLA,
                                        message_id="<rules-1@customer.test>"))
            line = postfix.wait_delivery(queue_id, "deferred")
            assert "relay=mailtriage" in line and "dsn=4.3.5" in line      # exit 78, our 4.3.5 first
            assert deferred_reason(postfix, queue_id).startswith(f"mailtriage: configuration error: {rules}:")
        flushed_and_delivered(postfix, queue_id)
    assert len(ticketed(postfix, "Printer on fire after the rules change")) == 1


def test_control_postfix_bounces_a_bare_exit_78(postfix_pipe):
    """What the 4.3.5 is for: the same exit status without it is a bounce to the customer."""
    postfix = postfix_pipe
    before = len(postfix.mailbox("carla"))
    queue_id = postfix.send(eml("To a command that only exits 78", sender=CARLA, to="bare78@example.test"),
                            rcpt="bare78@example.test")
    line = postfix.wait_delivery(queue_id, "bounced")
    assert "dsn=5.3.5" in line and "local configuration error" in line
    [bounce] = wait_for(lambda: postfix.mailbox("carla")[before:], timeout=30)
    assert b"Undelivered Mail Returned to Sender" in bounce
