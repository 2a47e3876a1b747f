"""`mailtriage ingest`: from raw mail to a classified ticket and an acknowledgement."""

from __future__ import annotations

import email
import email.policy
import json

from helpers import bare, break_raw_inserts, break_ticket_step, eml

NOW = "2026-03-02T09:00:00+00:00"


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_new_ticket_is_classified_stored_and_acknowledged(site):
    path = site.write("a.eml", "")
    path.write_bytes(eml("VPN is down for the whole sales team", "Nobody can work since 8:00.",
                         message_id="<anna-1@customer.example>"))
    assert site.ingest(path, now=NOW) == ["MT-1 new"]

    ticket = site.ticket("MT-1")
    assert ticket["severity"] == "S1" and "outage" in ticket["tags"]
    assert ticket["status"] == "new" and ticket["requester"] == "carla@customer.example"
    assert ticket["first_response_due"] == "2026-03-02T09:15:00+00:00"   # S1: 15m on the 24x7 calendar
    assert ticket["resolution_due"] == "2026-03-02T10:00:00+00:00"
    classified = [e for e in ticket["events"] if e["type"] == "classified"]
    assert "outage" in classified[0]["detail"]
    assert ticket["messages"][0]["body_text"].strip() == "Nobody can work since 8:00."

    [ack_raw] = site.outbox_files()
    ack = parsed(ack_raw)
    assert bare(ack["To"]) == "carla@customer.example"
    assert "[MT-1]" in ack["Subject"] and "VPN is down" in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == "<anna-1@customer.example>"
    assert "<anna-1@customer.example>" in ack["References"]
    assert ack["Message-ID"] and ack["Message-ID"] != "<anna-1@customer.example>"
    assert ack["X-Loop"] == "support@example.test"        # loop_id: the first mailbox's address


def test_reply_to_the_acknowledgement_threads_into_the_ticket(site):
    first = site.write("first.eml", "")
    first.write_bytes(eml("Printer on fire", message_id="<c-1@customer.example>"))
    site.ingest(first, now=NOW)
    ack_id = parsed(site.outbox_files()[0])["Message-ID"]

    reply = site.write("reply.eml", "")
    reply.write_bytes(eml("Re: [MT-1] Printer on fire", "Still smoking.", message_id="<c-2@customer.example>",
                          in_reply_to=ack_id, references=f"<c-1@customer.example> {ack_id}"))
    assert site.ingest(reply, now=NOW) == ["MT-1 reply"]
    assert len(site.ticket("MT-1")["messages"]) == 2
    assert len(site.outbox_files()) == 1          # no second acknowledgement for a reply


def test_subject_tag_threads_only_for_participants(site):
    site.write("a.eml", "").write_bytes(eml("Printer on fire", message_id="<c-1@customer.example>"))
    site.ingest(site.dir / "a.eml", now=NOW)

    cc_reply = eml("[MT-1] more info", sender="carla@customer.example", message_id="<c-3@customer.example>")
    stranger = eml("[MT-1] I want in", sender="mallory@evil.example", message_id="<m-1@evil.example>")
    site.write("b.eml", "").write_bytes(cc_reply)
    site.write("c.eml", "").write_bytes(stranger)
    assert site.ingest(site.dir / "b.eml", site.dir / "c.eml", now=NOW) == ["MT-1 reply", "MT-2 new"]
    events = site.ticket("MT-2")["events"]
    assert any(e["type"] == "tag-refused" and "MT-1" in e["detail"] for e in events)
    assert all(m["from"] != "mallory@evil.example" for m in site.ticket("MT-1")["messages"])


def test_same_message_twice_or_to_two_addresses_is_one_ticket(site):
    raw = eml("Printer on fire", message_id="<dup@customer.example>")
    site.write("a.eml", "").write_bytes(raw)
    # The same message delivered to a second support address: other transport headers.
    site.write("b.eml", "").write_bytes(b"Delivered-To: sales@example.test\r\n" + raw)
    lines = site.ingest(site.dir / "a.eml", site.dir / "a.eml", site.dir / "b.eml", now=NOW)
    assert lines == ["MT-1 new", "MT-1 duplicate", "MT-1 duplicate"]
    assert len(site.tickets()) == 1
    assert len(site.outbox_files()) == 1


def test_reply_arriving_before_its_original_joins_the_same_ticket(site):
    original = eml("Printer on fire", message_id="<o-1@customer.example>")
    reply = eml("Re: Printer on fire", "Now the toner too.", message_id="<o-2@customer.example>",
                in_reply_to="<o-1@customer.example>", references="<o-1@customer.example>")
    site.write("reply.eml", "").write_bytes(reply)
    site.write("orig.eml", "").write_bytes(original)
    assert site.ingest(site.dir / "reply.eml", site.dir / "orig.eml", now=NOW) == ["MT-1 new", "MT-1 reply"]
    ticket = site.ticket("MT-1")
    assert len(ticket["messages"]) == 2
    assert ticket["subject"] == "Printer on fire"


def test_stdin_ingest_like_an_mta_pipe(site):
    code, out, err = site.cli("ingest", now=NOW, stdin=eml("Printer on fire", message_id="<p@c.example>"))
    assert (code, out.strip()) == (0, "MT-1 new"), err


def test_automatic_mail_gets_a_ticket_but_never_an_answer(site):
    ooo = eml("Out of office", headers={"Auto-Submitted": "auto-replied"}, message_id="<ooo@c.example>")
    bulk = eml("Newsletter", headers={"Precedence": "bulk"}, message_id="<nl@c.example>",
               sender="news@shop.example")
    daemon = eml("Undeliverable", sender="MAILER-DAEMON@mx.example", message_id="<md@mx.example>")
    for name, raw in (("1.eml", ooo), ("2.eml", bulk), ("3.eml", daemon)):
        site.write(name, "").write_bytes(raw)
    site.ingest(*(site.dir / n for n in ("1.eml", "2.eml", "3.eml")), now=NOW)
    assert site.outbox_files() == []


def test_mail_from_our_own_address_is_ignored_as_a_loop(site):
    site.write("own.eml", "").write_bytes(eml("Loop?", sender="support@example.test", message_id="<l@x>"))
    assert site.ingest(site.dir / "own.eml", now=NOW) == ["- ignored:loop"]
    assert site.tickets() == []


def test_acknowledgements_to_one_sender_are_rate_limited(site):
    paths = []
    for i in range(7):
        path = site.dir / f"m{i}.eml"
        path.write_bytes(eml(f"Question {i}", message_id=f"<q{i}@customer.example>"))
        paths.append(path)
    site.ingest(*paths, now=NOW)
    assert len(site.tickets()) == 7
    assert len(site.outbox_files()) == 5          # per_sender_limit: 5 an hour
    events = site.ticket("MT-7")["events"]
    assert any(e["type"] == "not-acknowledged" and "rate limit" in e["detail"] for e in events)


def test_a_failing_step_quarantines_and_retry_recovers(site, monkeypatch):
    break_ticket_step(monkeypatch)
    site.write("a.eml", "").write_bytes(eml("Printer on fire", message_id="<q@customer.example>"))
    [line] = site.ingest(site.dir / "a.eml", now=NOW)
    assert line.startswith("- quarantined:")
    listing = json.loads(site.ok("quarantine", "list", "--json"))
    assert len(listing) == 1 and listing[0]["reason"]

    monkeypatch.undo()                         # the fix
    out = site.ok("quarantine", "retry", "--all", now=NOW)
    assert out.split()[-1] == "new"            # numbers may have gaps (PostgreSQL sequences)
    assert json.loads(site.ok("quarantine", "list", "--json")) == []
    assert len(site.outbox_files()) == 1


def test_store_failure_is_a_temporary_failure_for_the_mta(site):
    site.ok("tickets", "list")                        # creates the database
    break_raw_inserts(site.database_url())
    code, out, err = site.cli("ingest", now=NOW, stdin=eml("Printer on fire"))
    assert code == 75, (out, err)
    assert "temporary failure" in err             # was "tempfail": now the pipe's one line, 4.3.0 first
