"""How our mail reads in people's clients (issue 17, items 17–20), over SMTP
to the aiosmtpd sink: what an agent and a customer would see."""

from __future__ import annotations

import re

import pytest

from helpers import Site, eml, make_site
from servers import SMTP_PORT, Captured

NOW = "2026-03-02T09:00:00+00:00"           # Monday, 10:00 in Amsterdam
LATER = "2026-03-02T09:05:00+00:00"
TRUSTED = b"Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n"
ALICE = "Alice <alice@example.test>"
VENDOR = "The outage on router 7 is fixed since 08:40."
# What Gmail and Outlook leave out when they compare subjects to group a conversation.
_PREFIXES = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg)\s*:\s*)+", re.I)


class Desk:
    """A site that sends over SMTP to the sink; mail in through `ingest`, out through `flush`."""

    def __init__(self, site: Site, sink: list[Captured]):
        self.site, self.sink = site, sink

    def ingest(self, raw: bytes, now: str = NOW, *, agent: bool = False) -> str:
        code, out, err = self.site.cli("ingest", now=now, stdin=(TRUSTED + raw) if agent else raw)
        assert code == 0, err
        return out.strip()

    def flush(self, now: str = NOW) -> list[Captured]:
        """What the outbox sends at `now`, as the sink received it."""
        self.sink.clear()
        self.site.ok("outbox", "flush", now=now)
        return list(self.sink)

    def to(self, address: str, now: str = NOW) -> list[Captured]:
        return [m for m in self.flush(now) if address in m.rcpt_tos]


@pytest.fixture
def desk(tmp_path, smtp_sink) -> Desk:
    site = make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}",
                     agent_notices="[new, reply, note, assigned, tier]")
    return Desk(site, smtp_sink)


def text_of(mail: Captured) -> str:
    return mail.msg.get_content().replace("\r\n", "\n")


# -- item 17: forwarded mail reaches the agents --------------------------------------------------

FORWARDS = {
    "gmail": ("Fwd: Router down", "Can you check this?\n\nCarla\n\n---------- Forwarded message ---------\n"
              "From: Vendor Support <help@vendor.example>\nDate: Mon, Mar 2, 2026 at 9:00 AM\n"
              f"Subject: Router down\nTo: Carla <carla@customer.example>\n\n{VENDOR}\n\nRegards,\nVendor\n"),
    "apple": ("Fwd: Router down", "See below.\n\nBegin forwarded message:\n\n"
              "From: Vendor Support <help@vendor.example>\nSubject: Router down\n"
              f"Date: 2 March 2026 at 09:00:00 CET\nTo: Carla <carla@customer.example>\n\n{VENDOR}\n"),
    "outlook": ("FW: Router down", "Please have a look.\n\nCarla\n\n________________________________\n"
                "From: Vendor Support <help@vendor.example>\nSent: Monday, March 2, 2026 9:00 AM\n"
                f"To: Carla <carla@customer.example>\nSubject: Router down\n\n{VENDOR}\n"),
}


@pytest.mark.parametrize("client", FORWARDS)
def test_a_forwarded_thread_reaches_the_agents_whole(desk, client):
    subject, body = FORWARDS[client]
    assert desk.ingest(eml(subject, body, message_id="<c-1@customer.example>")) == "MT-1 new"
    [notice] = desk.to("l1-team@example.test")
    text = text_of(notice)
    assert VENDOR in text and "help@vendor.example" in text
    assert "(quoted history cut)" not in text


def test_history_below_a_customers_reply_is_still_cut_from_the_notice(desk):
    desk.ingest(eml("Router down", "It is down.", message_id="<c-1@customer.example>"))
    desk.flush()
    reply = ("It works again, thanks.\n\n________________________________\n"
             "From: Example Support <support@example.test>\nSent: Monday, March 2, 2026 10:00 AM\n"
             "Subject: [MT-1] Router down\n\nthank you for writing to us.\n")
    assert desk.ingest(eml("RE: [MT-1] Router down", reply, message_id="<c-2@customer.example>",
                           in_reply_to="<c-1@customer.example>"), LATER) == "MT-1 reply"
    [notice] = desk.to("l1-team@example.test", LATER)
    assert "It works again" in text_of(notice) and "thank you for writing" not in text_of(notice)


# -- item 18: every notice about a ticket in one conversation ------------------------------------

def test_every_notice_about_a_ticket_has_one_subject_and_one_thread(desk):
    desk.ingest(eml("Printer on fire", "It is smoking.", message_id="<c-1@customer.example>"))
    [new] = desk.to("l1-team@example.test")
    notices = [("new", new)]

    def agent(body: str, n: int, to: str = "support@example.test") -> None:
        raw = eml("Re: [MT-1] Printer on fire", body, sender=ALICE, to=to, message_id=f"<a-{n}@example.test>",
                  in_reply_to=new.msg["Message-ID"], references=f"<c-1@customer.example> {new.msg['Message-ID']}")
        assert desk.ingest(raw, LATER, agent=True) == "MT-1 reply"

    agent("Called her, it is the fuser.", 1, to="support-comment@example.test")
    notices += [("note", m) for m in desk.to("l1-team@example.test", LATER)]
    agent("#tier L2\n#frobnicate", 2)
    sent = desk.flush(LATER)
    notices += [("tier", m) for m in sent if m.rcpt_tos == ["l2-team@example.test"]]
    notices += [("command error", m) for m in sent if m.rcpt_tos == ["alice@example.test"]]
    desk.ingest(eml("Re: [MT-1] Printer on fire", "Still smoking.", message_id="<c-2@customer.example>",
                    in_reply_to="<c-1@customer.example>"), LATER)
    notices += [("reply", m) for m in desk.to("l2-team@example.test", LATER)]
    desk.site.ok("sla", "tick", now="2026-03-02T09:48:00+00:00")          # 80 % of the first hour
    notices += [("warning", m) for m in desk.to("l2-team@example.test", "2026-03-02T09:48:00+00:00")]
    desk.site.ok("sla", "tick", now="2026-03-02T10:00:00+00:00")          # missed: up to L3
    notices += [("escalation", m) for m in desk.to("l3-team@example.test", "2026-03-02T10:00:00+00:00")]

    kinds = [kind for kind, _ in notices]
    assert kinds == ["new", "note", "tier", "command error", "reply", "warning", "escalation"]
    subjects = {kind: mail.msg["Subject"] for kind, mail in notices}
    assert {_PREFIXES.sub("", s) for s in subjects.values()} == {"[MT-1] Printer on fire"}, subjects
    for kind, mail in notices:      # and each refers to the conversation (the command error: to Alice's mail in it)
        wanted = "<a-2@example.test>" if kind == "command error" else "<c-1@customer.example>"
        assert wanted in mail.msg["References"].split(), kind
    firsts = {kind: text_of(mail).splitlines()[0] for kind, mail in notices}   # what kind of notice: its first line
    assert firsts["new"].startswith("New ticket") and firsts["note"].startswith("Internal note")
    assert firsts["tier"].startswith("Escalated") and firsts["reply"].startswith("Customer replied")
    assert firsts["warning"].startswith("SLA warning: first response due")
    assert firsts["escalation"].startswith("Escalated to L3: first response target missed")


# -- item 19: text as the writer's client meant it, 7-bit on the wire -----------------------------

def agent_answer(notice: Captured, n: int, content_type: str, body: str) -> bytes:
    """Alice's answer to a notice, as her client writes it (any Content-Type)."""
    head = eml("Re: [MT-1] Printer on fire", "", sender=ALICE, message_id=f"<a-{n}@example.test>",
               in_reply_to=notice.msg["Message-ID"],
               references=f"<c-1@customer.example> {notice.msg['Message-ID']}").split(b"MIME-Version:")[0]
    return head + f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n{body}\r\n".encode()


def opened(desk: Desk) -> Captured:
    desk.ingest(eml("Printer on fire", "It is smoking.", message_id="<c-1@customer.example>"))
    [notice] = desk.to("l1-team@example.test")
    return notice


def test_an_answer_from_a_phone_in_html_reaches_the_customer_unindented(desk):
    notice = opened(desk)
    html = ('<div dir="auto"><div dir="auto"><div>Hello Carla,</div><div dir="auto"><br></div>'
            '<div dir="auto">please switch it off.</div><div dir="auto"><br></div><div>Alice</div></div></div>')
    desk.ingest(agent_answer(notice, 1, "text/html; charset=utf-8", html), LATER, agent=True)
    [answer] = desk.to("carla@customer.example", LATER)
    assert text_of(answer).strip() == "Hello Carla,\n\nplease switch it off.\n\nAlice"


def test_a_flowed_answer_from_thunderbird_reaches_the_customer_as_paragraphs(desk):
    notice = opened(desk)
    flowed = ("Hello Carla,\r\n\r\nthe fuser unit is broken; we have ordered a new one and a \r\n"
              "technician will fit it on Wednesday morning. Until then please use \r\n"
              "the printer on the second floor.\r\n\r\nAlice")
    desk.ingest(agent_answer(notice, 1, "text/plain; charset=utf-8; format=flowed", flowed), LATER, agent=True)
    [answer] = desk.to("carla@customer.example", LATER)
    assert text_of(answer).strip().splitlines() == [
        "Hello Carla,", "", "the fuser unit is broken; we have ordered a new one and a technician will fit it "
        "on Wednesday morning. Until then please use the printer on the second floor.", "", "Alice"]


def test_eight_bit_text_never_reaches_a_relay_without_body_8bitmime(desk):
    desk.ingest(eml("Drucker brennt", "Die Größe des Rauchs: groß.\n\nJürgen", sender="Jürgen Groß <jg@kunde.example>",
                    message_id="<c-1@customer.example>"))
    sent = desk.flush()
    assert sorted(m.rcpt_tos[0] for m in sent) == ["jg@kunde.example", "l1-team@example.test"]
    for mail in sent:                                           # RFC 6152: 8-bit data only after BODY=8BITMIME
        assert mail.raw.isascii() or "BODY=8BITMIME" in mail.mail_options, mail.raw[:400]
    [notice] = [m for m in sent if m.rcpt_tos == ["l1-team@example.test"]]
    assert "Die Größe des Rauchs: groß." in text_of(notice)


# -- item 20: names and times as people read them --------------------------------------------------

def test_the_customer_is_greeted_by_name_with_local_times_and_notices_drop_what_is_done(desk):
    first = eml("Printer on fire", "It is smoking.", sender='"Jansen, Pieter" <pieter@customer.example>',
                message_id="<c-1@customer.example>")
    assert desk.ingest(first) == "MT-1 new"                                 # S3: 1h / 3h in the office calendar
    sent = desk.flush()
    [ack] = [m for m in sent if m.rcpt_tos == ["pieter@customer.example"]]
    [notice] = [m for m in sent if m.rcpt_tos == ["l1-team@example.test"]]
    assert text_of(ack).startswith("Hello Pieter Jansen,\n")
    assert "We aim to respond by Monday 2 March 2026, 11:00 CET." in text_of(ack)     # Amsterdam, not UTC ISO
    assert ack.msg["To"].addresses[0].display_name == "Jansen, Pieter"            # the name as the customer wrote it
    assert "First response due: Mon 2026-03-02 11:00 CET" in text_of(notice)
    assert "Resolution due:     Mon 2026-03-02 13:00 CET" in text_of(notice)

    answer = eml("Re: [MT-1] Printer on fire", "#assign me\nHello Pieter, please unplug it.", sender=ALICE,
                 message_id="<a-1@example.test>", in_reply_to=notice.msg["Message-ID"],
                 references=f"<c-1@customer.example> {notice.msg['Message-ID']}")
    desk.ingest(answer, LATER, agent=True)                                     # the first response
    desk.flush(LATER)
    again = eml("Re: [MT-1] Printer on fire", "Unplugged, still smoking.", sender="pieter@customer.example",
                message_id="<c-2@customer.example>", in_reply_to="<c-1@customer.example>")
    desk.ingest(again, "2026-03-02T09:10:00+00:00")
    [told] = desk.to("alice@example.test", "2026-03-02T09:10:00+00:00")
    assert told.msg["To"].addresses[0].display_name == "Alice"               # the assignee, by name
    assert "First response due" not in text_of(told)
    assert "Resolution due:     Mon 2026-03-02 13:00 CET" in text_of(told)

    desk.site.ok("sla", "tick", now="2026-03-02T12:00:00+00:00")           # the resolution target missed
    [escalation] = desk.to("l2-team@example.test", "2026-03-02T12:00:00+00:00")
    deadlines = text_of(escalation).partition("Deadlines\n")[2].partition("\n\n")[0].splitlines()
    [first_response] = [line for line in deadlines if "first response" in line]
    assert first_response.split()[:3] == ["first", "response", "met"] and "due" not in first_response
    assert "Opened:      Mon 2026-03-02 10:00 CET" in text_of(escalation)
