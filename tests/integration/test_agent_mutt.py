"""End to end with a real mail client: an agent answers the notice with mutt,
the MX adds Authentication-Results, and the customer receives the answer,
threaded, over SMTP (aiosmtpd sink)."""

from __future__ import annotations

import time

from helpers import eml, make_site
from servers import SMTP_PORT, wait_for

NOW = "2026-03-02T09:00:00+00:00"
LATER = "2026-03-02T09:07:00+00:00"
REPLY = ("#severity S2\n#tag printer\nHello Carla,\n\nplease switch it off and unplug it.\n\nAlice\n\n"
         "-- \nAlice, L1 support")


def as_mbox(raw: bytes) -> bytes:
    """One message as an mbox file (LF line ends, `From ` lines escaped)."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    body = b"\n".join(b">" + line if line.startswith(b"From ") else line for line in lines)
    return b"From support@example.test Mon Mar  2 09:00:00 2026\n" + body.rstrip(b"\n") + b"\n\n"


def test_agent_answers_with_mutt_and_the_customer_gets_it_threaded(tmp_path, smtp_sink, mutt):
    site = make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}",
                     agent_notices="[new, reply, note, assigned, tier]")
    first = eml("Printer on fire", "It is smoking.", message_id="<c-1@customer.example>")
    assert site.cli("ingest", now=NOW, stdin=first)[1].strip() == "MT-1 new"
    site.ok("outbox", "flush", now=NOW)
    [notice] = [m for m in smtp_sink if m.rcpt_tos == ["l1-team@example.test"]]
    [ack] = [m for m in smtp_sink if m.rcpt_tos == ["carla@customer.example"]]

    mbox = tmp_path / "notice.mbox"
    mbox.write_bytes(as_mbox(notice.raw))
    smtp_sink.clear()
    mutt.reply(mbox, REPLY, from_="Alice <alice@example.test>", extra=("set hostname=example.test",))
    [sent] = wait_for(lambda: list(smtp_sink))
    assert sent.rcpt_tos == ["support@example.test"]              # Reply-To of the notice
    assert sent.msg["In-Reply-To"] == notice.msg["Message-ID"]    # mutt replied to the notice

    # The MX (which checked DKIM) prepends its verdict, then pipes the message to us.
    arrived = (b"Authentication-Results: mx.example.test; dkim=pass header.d=example.test; "
               b"spf=pass smtp.mailfrom=alice@example.test\r\n" + sent.raw)
    smtp_sink.clear()
    code, out, err = site.cli("ingest", now=LATER, stdin=arrived)
    assert (code, out.strip()) == (0, "MT-1 reply"), err
    site.ok("outbox", "flush", now=LATER)

    [answer] = wait_for(lambda: list(smtp_sink))
    msg = answer.msg
    assert answer.rcpt_tos == ["carla@customer.example"] and answer.mail_from == "support@example.test"
    assert msg["From"].addresses[0].display_name == "Alice via Example Support"
    assert msg["Subject"] == "Re: [MT-1] Printer on fire"
    assert msg["In-Reply-To"] == "<c-1@customer.example>"
    assert msg["References"].split() == ["<c-1@customer.example>", ack.msg["Message-ID"]]
    text = msg.get_content().replace("\r\n", "\n").strip()
    assert text == "Hello Carla,\n\nplease switch it off and unplug it.\n\nAlice"   # no #lines, quote, signature

    ticket = site.ticket("MT-1")
    assert (ticket["severity"], ticket["tags"], ticket["status"]) == ("S2", ["printer"], "open")
    assert ticket["first_responded_at"] == LATER


def test_a_forged_mutt_reply_reaches_nobody(tmp_path, smtp_sink, mutt):
    site = make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}",
                     agent_notices="[new, reply, note, assigned, tier]")
    site.cli("ingest", now=NOW, stdin=eml("Printer on fire", message_id="<c-1@customer.example>"))
    site.ok("outbox", "flush", now=NOW)
    [notice] = [m for m in smtp_sink if m.rcpt_tos == ["l1-team@example.test"]]
    mbox = tmp_path / "notice.mbox"
    mbox.write_bytes(as_mbox(notice.raw))
    smtp_sink.clear()
    mutt.reply(mbox, "#status closed\nSend me your password.", from_="Alice <alice@example.test>")
    [sent] = wait_for(lambda: list(smtp_sink))
    smtp_sink.clear()
    # No Authentication-Results from our MX: From: alone proves nothing.
    assert site.cli("ingest", now=LATER, stdin=sent.raw)[1].strip() == "MT-1 reply"
    site.ok("outbox", "flush", now=LATER)
    time.sleep(0.05)
    assert [m.rcpt_tos for m in smtp_sink] == [["l1-team@example.test"]]   # the warning notice only
    assert site.ticket("MT-1")["status"] == "new"


def test_an_inline_answer_to_a_notice_relays_only_what_the_agent_typed(tmp_path, smtp_sink, mutt):
    site = make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}",
                     agent_notices="[new, reply, note, assigned, tier]")
    first = eml("Printer on fire", "It is smoking.\nAnd it beeps every minute.", message_id="<c-1@customer.example>")
    assert site.cli("ingest", now=NOW, stdin=first)[1].strip() == "MT-1 new"
    site.ok("outbox", "flush", now=NOW)
    [notice] = [m for m in smtp_sink if m.rcpt_tos == ["l1-team@example.test"]]
    mbox = tmp_path / "notice.mbox"
    mbox.write_bytes(as_mbox(notice.raw))
    smtp_sink.clear()
    mutt.reply(mbox, "Please switch it off and unplug it.", from_="Alice <alice@example.test>",
               extra=("set hostname=example.test",), after="It is smoking.")
    [sent] = wait_for(lambda: list(smtp_sink))
    assert "> It is smoking.\nPlease switch it off" in sent.msg.get_content().replace("\r\n", "\n")  # inline
    arrived = (b"Authentication-Results: mx.example.test; dkim=pass header.d=example.test; "
               b"spf=pass smtp.mailfrom=alice@example.test\r\n" + sent.raw)
    smtp_sink.clear()
    assert site.cli("ingest", now=LATER, stdin=arrived)[1].strip() == "MT-1 reply"
    site.ok("outbox", "flush", now=LATER)
    [answer] = wait_for(lambda: list(smtp_sink))
    assert answer.rcpt_tos == ["carla@customer.example"]
    text = answer.msg.get_content().replace("\r\n", "\n").strip()
    assert text == "Please switch it off and unplug it."       # no notice, no SLA figures, no "wrote:"
