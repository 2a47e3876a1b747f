"""Mail reaches the right people (issue 17, items 4 to 7 and 16): Reply-To,
automatic mail on a ticket, reply-all, tickets agents open for customers,
and clocks that start at acceptance."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from helpers import eml, site_app
from test_agents_mail import ALICE, LATER, NOW, Desk, answer, notice_of, text_of

from mailtriage import pipeline


def test_a_web_forms_reply_to_is_the_customer_answers_go_to(tmp_path):
    desk = Desk(tmp_path)
    form = eml("Contact form: invoice question", "Name: Pieter\nQuestion: where is my invoice?",
               sender="Web form <webform@shop.example>", message_id="<f-1@shop.example>",
               headers={"Reply-To": "Pieter Jansen <pieter@customer.example>"})
    assert desk.ingest(form, auth=None) == "MT-1 new"
    ack, notice = desk.sent()
    assert ack["To"] == "pieter@customer.example"
    assert desk.ticket()["requester"] == "pieter@customer.example"
    assert desk.ingest(answer(notice, "Hello Pieter,\n\nit is attached.\n\nAlice"), now=LATER) == "MT-1 reply"
    [relayed] = desk.sent()
    assert (relayed["To"], relayed["Cc"]) == ("pieter@customer.example", None)      # not the web form


def test_a_strangers_auto_reply_joins_no_one_and_is_never_answered_to(tmp_path):
    desk = Desk(tmp_path)
    assert desk.ingest(eml("Printer on fire", message_id="<c-1@customer.example>"), auth=None) == "MT-1 new"
    ack, notice = desk.sent()
    away = eml("Automatic reply: [MT-1] Printer on fire", "I am out of the office until Monday.",
               sender="Olaf <olaf@customer.example>", message_id="<ooo-1@customer.example>",
               in_reply_to=ack["Message-ID"], references=ack["Message-ID"],
               headers={"Auto-Submitted": "auto-replied"})
    assert desk.ingest(away, auth=None, now=LATER) == "MT-1 reply"
    ticket = desk.ticket()
    assert [m["kind"] for m in ticket["messages"]] == ["customer", "auto"]
    assert desk.ingest(answer(notice, "Please unplug it.", message_id="<a-2@example.test>"), now=LATER) \
        == "MT-1 reply"
    [relayed] = [m for m in desk.sent() if m["To"] != "l1-team@example.test"]
    assert relayed["To"] == "carla@customer.example" and relayed["Cc"] is None     # Olaf is not Cc'd
    assert relayed["In-Reply-To"] == "<c-1@customer.example>"                       # nor answered to


def test_a_reply_all_does_not_reach_the_customer_twice(tmp_path):
    desk = Desk(tmp_path)
    first = eml("Printer on fire", message_id="<c-1@customer.example>", cc="Dan <dan@customer.example>")
    assert desk.ingest(first, auth=None) == "MT-1 new"
    _, notice = desk.sent()
    reply_all = eml("Re: [MT-1] Printer on fire", "Unplug it, please.\n\nAlice", sender=ALICE,
                    to="support@example.test", cc="carla@customer.example", message_id="<a-1@example.test>",
                    in_reply_to=notice["Message-ID"], references=notice["Message-ID"])
    assert desk.ingest(reply_all, now=LATER) == "MT-1 reply"
    [relayed] = desk.sent()
    assert (relayed["To"], relayed["Cc"]) == ("dan@customer.example", None)          # only the one it missed
    replied = [d for t, d in desk.events() if t == "replied"]
    assert replied and "reached carla@customer.example directly (reply-all)" in replied[0]
    assert desk.ticket()["first_responded_at"] == LATER


def test_a_ticket_an_agent_opens_for_a_customer_is_the_customers(tmp_path):
    desk = Desk(tmp_path)
    raw = eml("ACME called: VPN down", "#severity S1\nAnna from ACME called, nobody can log in.", sender=ALICE,
              cc="Anna <anna@acme.example>", message_id="<a-20@example.test>")
    assert desk.ingest(raw) == "MT-1 new"
    ticket = desk.ticket()
    assert ticket["requester"] == "anna@acme.example" and ticket["severity"] == "S1"
    sent = desk.sent()
    [ack] = [m for m in sent if m["Auto-Submitted"] == "auto-replied"]
    assert ack["To"] == "anna@acme.example"                            # not Alice
    due = datetime.fromisoformat(ticket["first_response_due"])
    assert due == datetime.fromisoformat(NOW) + timedelta(minutes=15)   # S1's target
    assert "Severity: S1" in text_of(ack) and "Alice" not in text_of(ack)
    types = [t for t, _ in desk.events()]
    assert types.index("severity") < types.index("acknowledged")       # commands first


def test_clocks_start_when_the_message_was_accepted_not_when_it_was_processed(tmp_path):
    desk = Desk(tmp_path)
    app = site_app(desk.site, datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    try:
        accepted = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
        raw_id, _ = pipeline.accept(app, eml("Printer on fire", message_id="<c-1@customer.example>"), accepted,
                                    "smtp")
        # The database was down for ten minutes: processed later, from the retry job.
        outcome = pipeline.process_stored(app, raw_id, accepted + timedelta(minutes=10))
        assert outcome.action == "new"
    finally:
        app.store.close()
    ticket = desk.ticket()
    assert datetime.fromisoformat(ticket["created_at"]) == accepted
    assert datetime.fromisoformat(ticket["first_response_due"]) == accepted + timedelta(hours=1)
