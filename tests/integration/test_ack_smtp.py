"""Acknowledgements reach a real SMTP server (aiosmtpd), exactly once."""

from __future__ import annotations

import json

from helpers import eml, make_site
from servers import SMTP_PORT

NOW = "2026-03-02T09:00:00+00:00"


def test_acknowledgement_is_delivered_over_smtp(tmp_path, smtp_sink):
    site = make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}")
    site.write("a.eml", "").write_bytes(eml("Printer on fire", message_id="<c-1@customer.example>"))
    assert site.ingest(site.dir / "a.eml", now=NOW) == ["MT-1 new"]
    assert site.ok("outbox", "flush", now=NOW).startswith("sent 1")

    [captured] = smtp_sink
    assert captured.rcpt_tos == ["carla@customer.example"]
    assert captured.mail_from == "support@example.test"
    assert "[MT-1]" in captured.msg["Subject"]
    assert captured.msg["In-Reply-To"] == "<c-1@customer.example>"
    assert site.ok("outbox", "flush", now=NOW).startswith("sent 0")     # nothing twice
    assert len(smtp_sink) == 1


def test_relay_refusing_for_a_while_defers_then_delivers_once(tmp_path, smtp_sink, smtp_sink_control):
    site = make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}")
    site.write("a.eml", "").write_bytes(eml("Printer on fire", message_id="<c-2@customer.example>"))
    site.ingest(site.dir / "a.eml", now=NOW)
    smtp_sink_control.fail_next(2)

    assert "deferred 1" in site.ok("outbox", "flush", now=NOW)
    [row] = json.loads(site.ok("outbox", "list", "--json"))
    assert row["attempts"] == 1 and "451" in row["last_error"]
    assert "sent 0" in site.ok("outbox", "flush", now=NOW)             # not due again yet
    assert "deferred 1" in site.ok("outbox", "flush", now="2026-03-02T09:01:00+00:00")
    assert "sent 1" in site.ok("outbox", "flush", now="2026-03-02T09:10:00+00:00")
    assert len(smtp_sink) == 1
    assert json.loads(site.ok("outbox", "list", "--json")) == []


def test_permanent_refusal_gives_up_with_an_event(tmp_path, smtp_sink, smtp_sink_control):
    site = make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}")
    site.write("a.eml", "").write_bytes(eml("Printer on fire", message_id="<c-3@customer.example>"))
    site.ingest(site.dir / "a.eml", now=NOW)
    smtp_sink_control.fail_next(1, "550 5.1.1 no such user")
    assert "failed 1" in site.ok("outbox", "flush", now=NOW)
    events = site.ticket("MT-1")["events"]
    assert any(e["type"] == "send-failed" and "550" in e["detail"] for e in events)
    assert smtp_sink == []
