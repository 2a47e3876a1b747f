"""What an operator sees (issue 17, items 12, 15, 21): an outage that changes
cause is said again, a relative password file is found beside the config,
an escalation to an empty tier is said loudly, a typo in a filter is an
error, the `classified` event names the queue set, and `--help` says what
mailtriage is."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest
import yaml
from imapclient import IMAPClient

from daemons import imap_site
from helpers import Site, eml, make_site
from mailtriage.app import build_app, load_config
from mailtriage.backoff import Backoff, Outage
from mailtriage.clock import FixedClock
from mailtriage.ingest.imap import ImapWatcher
from servers import free_port

USER = "support@example.test"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def raised(action: Callable[[], object]) -> BaseException:
    """What a real client raises doing `action`."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - the exception is the point
        return exc
    raise AssertionError("no exception")


def test_an_imap_outage_that_changes_cause_is_logged_again_once_per_cause(dovecot, caplog):
    def client() -> IMAPClient:
        return IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)

    def gone_folder() -> None:
        imap = client()
        imap.login(USER, "support-secret")
        imap.select_folder("Gone")

    dovecot.reset(USER)
    refused = raised(lambda: socket.create_connection(("127.0.0.1", free_port()), timeout=5))
    wrong_password = raised(lambda: client().login(USER, "not-the-password"))
    folder_gone = raised(gone_folder)
    folder_gone_again = raised(gone_folder)                      # Dovecot's timings differ: the same cause
    outage = Outage("imap support/Gone", logging.getLogger("test.outage"), Backoff(jitter=0))
    with caplog.at_level(logging.DEBUG, logger="test.outage"):
        for exc in (refused, refused, wrong_password, wrong_password, folder_gone, folder_gone_again, refused):
            outage.failed(exc)
        outage.ended()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4, warnings
    assert warnings[0].startswith("imap support/Gone: ConnectionRefusedError: ")
    assert warnings[0].endswith("; retrying with backoff")
    assert warnings[1].startswith("imap support/Gone: failing differently now (for ")
    assert " s): LoginError: " in warnings[1]
    assert warnings[2].startswith("imap support/Gone: failing differently now (for ")
    assert " s): IMAP4.error: select failed: Mailbox doesn't exist: Gone" in warnings[2]
    assert warnings[3].startswith("imap support/Gone: working again after")       # 7 failed attempts
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 3 + 1       # repeats, and refused again


def test_a_relative_password_file_is_read_beside_the_config(tmp_path, dovecot, monkeypatch):
    dovecot.reset(USER)
    site = imap_site(tmp_path / "etc", dovecot)
    data = yaml.safe_load(site.config.read_text())
    imap = data["mailboxes"][0]["imap"]
    del imap["password_env"]
    imap["password_file"] = "secrets/imap-password"
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    (site.dir / "secrets").mkdir()
    (site.dir / "secrets" / "imap-password").write_text("support-secret\n")
    monkeypatch.chdir(tmp_path)                  # the service runs elsewhere, as systemd's WorkingDirectory
    dovecot.deliver(USER, eml("Printer on fire", message_id="<pw-1@customer.example>"))
    app = build_app(load_config(site.config), FixedClock(T0))
    [box] = app.settings.mailboxes
    watcher = ImapWatcher(box, lambda: app)
    try:
        [taken] = watcher.run_once(T0)
        assert (taken.message_id, taken.outcome.action if taken.outcome else None) == ("<pw-1@customer.example>",
                                                                                     "new")
    finally:
        watcher.close()
        app.store.close()


def without_l2(site: Site) -> Site:
    data = yaml.safe_load(site.config.read_text())
    data["tiers"]["L2"] = {"notify": []}
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return site


def test_an_escalation_to_a_tier_nobody_listens_to_is_said_loudly(tmp_path, caplog):
    site = without_l2(make_site(tmp_path / "site"))
    path = site.write("a.eml", "")
    path.write_bytes(eml("Printer on fire", message_id="<c-1@customer.example>"))   # S3: 1h first response
    assert site.ingest(path, now=T0.isoformat()) == ["MT-1 new"]
    with caplog.at_level(logging.WARNING, logger="mailtriage.sla.sweep"):
        assert "1 escalation(s)" in site.ok("sla", "tick", now=(T0 + timedelta(hours=1)).isoformat())
    [escalated] = [e for e in site.ticket("MT-1")["events"] if e["type"] == "escalated"]
    assert escalated["detail"].endswith("NOBODY NOTIFIED: tiers.L2.notify is empty and no agent is assigned")
    [logged] = [r.getMessage() for r in caplog.records if r.name == "mailtriage.sla.sweep"]
    assert logged == (f"SLA escalation for MT-1 went to nobody: tiers.L2.notify is empty and no agent is "
                      f"assigned (fill it in {site.config})")


def test_a_status_or_severity_that_does_not_exist_is_a_usage_error(tmp_path):
    site = make_site(tmp_path / "site")
    assert site.cli("tickets", "list", "--status", "opne") == (
        2, "", "mailtriage: --status opne: not one of new, open, pending, resolved, closed\n")
    assert site.cli("tickets", "list", "--severity", "s1,S7")[0::2] == (
        2, "mailtriage: --severity S7: not one of S1, S2, S3, S4\n")
    assert site.cli("tickets", "list", "--status", "Open,pending", "--severity", "s1") == (0, "", "")


def test_the_classified_event_names_the_queue_of_the_mailbox_the_mail_came_to(tmp_path):
    site = make_site(tmp_path / "site")
    data = yaml.safe_load(site.config.read_text())
    data["mailboxes"].append({"name": "sales", "address": "sales@example.test", "queue": "sales"})
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    path = site.write("a.eml", "")
    path.write_bytes(eml("Quote for 20 licences", "Please send a quote.", to="sales@example.test"))
    assert site.ingest(path, now=T0.isoformat()) == ["MT-1 new"]
    ticket = site.ticket("MT-1")
    [classified] = [e for e in ticket["events"] if e["type"] == "classified"]
    assert ticket["queue"] == "sales"
    assert "queue=sales" in classified["detail"]


def test_help_says_what_mailtriage_is():
    result = subprocess.run([sys.executable, "-m", "mailtriage", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    description = " ".join(result.stdout.split("\n\n")[1].split())
    assert description == ("mailtriage: an email-driven support-ticket daemon that threads the mail customers "
                           "send to a support address into tickets, classifies and acknowledges it, and keeps "
                           "the SLA clocks.")


@pytest.fixture(autouse=True)
def _no_config_from_the_environment(monkeypatch):
    monkeypatch.delenv("MAILTRIAGE_CONFIG", raising=False)
