"""The SMTP/LMTP listener: swaks and smtplib as the MTA, a real aiosmtpd server."""

from __future__ import annotations

import contextlib
import shutil
import smtplib
import subprocess

import pytest
import yaml

from helpers import break_raw_inserts, eml, make_site, need
from mailtriage.app import build_app, load_config
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.ingest.smtp import Listener
from servers import free_port

NOW = parse_instant("2026-03-02T09:00:00+00:00")


@pytest.fixture
def listening(tmp_path, database_url):
    """A site, its App and its listener on a free port; yields (site, app, port)."""
    site = make_site(tmp_path / "site", smtp_in_port=free_port(), database=database_url)
    with _listen(site) as running:
        yield running


@contextlib.contextmanager
def _listen(site):  # type: ignore[no-untyped-def]
    app = build_app(load_config(site.config), FixedClock(NOW))
    listener = Listener(lambda: app)
    listener.start()
    try:
        yield site, app, app.settings.smtp_in.port
    finally:
        listener.stop()
        app.store.close()


def test_swaks_gets_250_after_the_commit_and_the_ticket_exists(listening):
    need(shutil.which("swaks") is not None, "swaks is not installed (apt-get install swaks)")
    site, app, port = listening
    out = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--from", "anna@customer.example", "--to", "support@example.test",
         "--header", "Subject: VPN is down", "--header", "Message-Id: <swaks-1@customer.example>",
         "--body", "Nobody can work."], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "<-  250 2.0.0 accepted MT-" in out.stdout
    [ticket] = site.tickets()
    assert ticket["subject"] == "VPN is down" and ticket["requester"] == "anna@customer.example"


def test_unknown_recipients_get_550_and_the_size_limit_is_announced(listening):
    _site, app, port = listening
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        code, _ = smtp.ehlo("mta.example")
        assert code == 250
        assert int(smtp.esmtp_features["size"]) == app.settings.smtp_in.max_size
        smtp.mail("anna@customer.example")
        code, reply = smtp.rcpt("nobody@example.test")
        assert code == 550 and b"no such mailbox" in reply
        assert smtp.rcpt("support-comment@example.test")[0] == 250


def test_a_message_over_the_size_limit_is_refused(tmp_path):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    data = yaml.safe_load(site.config.read_text())
    data["smtp_in"]["max_size"] = "1KB"
    site.config.write_text(yaml.safe_dump(data))
    with _listen(site) as (_site, _app, port):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            assert smtp.ehlo()[0] == 250 and smtp.esmtp_features["size"] == "1024"
            with pytest.raises(smtplib.SMTPException) as refused:
                smtp.sendmail("anna@customer.example", ["support@example.test"], eml(body="x" * 4000))
            assert "552" in str(refused.value)
        assert site.tickets() == []


def test_a_store_failure_answers_451_so_the_mta_keeps_the_message(listening):
    site, app, port = listening
    site.tickets()                                           # the schema exists
    break_raw_inserts(app.settings.database)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("anna@customer.example", ["support@example.test"], eml("Printer on fire"))
    assert refused.value.smtp_code == 451


def test_lmtp_answers_once_per_recipient(tmp_path):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    data = yaml.safe_load(site.config.read_text())
    data["smtp_in"]["lmtp"] = True
    site.config.write_text(yaml.safe_dump(data))
    with _listen(site) as (_site, _app, port):
        lmtp = smtplib.LMTP("127.0.0.1", port, timeout=10)
        try:
            assert lmtp.ehlo()[0] == 250                    # smtplib.LMTP sends LHLO
            lmtp.mail("anna@customer.example")
            assert lmtp.rcpt("support@example.test")[0] == 250
            assert lmtp.rcpt("support-comment@example.test")[0] == 250
            lmtp.putcmd("data")
            assert lmtp.getreply()[0] == 354
            lmtp.send(eml("Printer on fire", message_id="<lmtp@customer.example>").replace(b"\r\n.", b"\r\n..")
                      + b"\r\n.\r\n")
            replies = [lmtp.getreply(), lmtp.getreply()]
            assert [code for code, _ in replies] == [250, 250]
        finally:
            lmtp.close()
        assert len(site.tickets()) == 1
