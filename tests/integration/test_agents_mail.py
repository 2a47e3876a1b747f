"""Agents work from their mail client: notices, relayed answers, internal
notes, commands, and forged agent mail that changes nothing."""

from __future__ import annotations

import email
import email.policy
import json

import pytest

from helpers import bare, eml, make_site

NOW = "2026-03-02T09:00:00+00:00"
LATER = "2026-03-02T09:05:00+00:00"
ALICE = "Alice <alice@example.test>"
TRUSTED = "mx.example.test; dkim=pass header.d=example.test header.i=@example.test"
ALL_NOTICES = "[new, reply, note, assigned, tier]"


class Desk:
    """A site plus what it has sent so far."""

    def __init__(self, tmp_path):
        self.site = make_site(tmp_path / "site", agent_notices=ALL_NOTICES)
        self.count = 0
        self.seen = 0

    def ingest(self, raw: bytes, now: str = NOW, auth: str | None = TRUSTED) -> str:
        if auth is not None:
            raw = f"Authentication-Results: {auth}\r\n".encode() + raw
        self.count += 1
        path = self.site.dir / f"m{self.count}.eml"
        path.write_bytes(raw)
        [line] = self.site.ingest(path, now=now)
        return line

    def sent(self) -> list[email.message.EmailMessage]:
        """Mail sent since the last call."""
        files = self.site.outbox_files()
        new, self.seen = files[self.seen:], len(files)
        return [email.message_from_bytes(raw, policy=email.policy.default) for raw in new]

    def ticket(self, ref: str = "MT-1") -> dict:
        return self.site.ticket(ref)

    def events(self, ref: str = "MT-1") -> list[tuple[str, str]]:
        return [(e["type"], e["detail"]) for e in self.ticket(ref)["events"]]


def text_of(msg) -> str:
    return msg.get_content().replace("\r\n", "\n")


@pytest.fixture
def desk(tmp_path) -> Desk:
    desk = Desk(tmp_path)
    line = desk.ingest(eml("Printer on fire", "It is smoking.\n\nCarla", message_id="<c-1@customer.example>",
                           cc="Dan <dan@customer.example>"), auth=None)
    assert line == "MT-1 new"
    return desk


def notice_of(messages) -> email.message.EmailMessage:
    [notice] = [m for m in messages if bare(m["To"]) == "l1-team@example.test"]
    return notice


def answer(notice, body: str, *, sender: str = ALICE, message_id: str = "<a-1@example.test>",
           to: str = "support@example.test", headers: dict | None = None) -> bytes:
    return eml(f"Re: {notice['Subject']}", body, sender=sender, to=to, message_id=message_id,
               in_reply_to=notice["Message-ID"], references=f"{notice['References']} {notice['Message-ID']}",
               headers=headers)


def test_new_ticket_notice_goes_to_the_tier_with_text_facts_and_commands(desk):
    ack, notice = desk.sent()
    assert bare(ack["To"]) == "carla@customer.example" and ack["To"].addresses[0].display_name == "Carla Customer"
    assert bare(notice["To"]) == "l1-team@example.test"
    assert notice["Reply-To"] == "support@example.test" and notice["From"].addresses[0].addr_spec == \
        "support@example.test"
    assert notice["Subject"] == "[MT-1] Printer on fire"          # one subject for every notice (item 18)
    assert notice["In-Reply-To"] == "<c-1@customer.example>" and notice["Auto-Submitted"] == "auto-generated"
    text = text_of(notice)
    assert text.startswith("New ticket: ")                      # what kind of notice: its first line
    assert "It is smoking." in text and "carla@customer.example (also: dan@customer.example)" in text
    assert "Severity: S3" in text and "#severity S1..S4" in text and "#assign NAME|me" in text
    assert ("notified", "new: to l1-team@example.test") in desk.events()


def test_an_agent_answer_is_relayed_to_the_customers_threaded(desk):
    ack, notice = desk.sent()
    body = ("Hello Carla,\n\nplease unplug it.\n\nAlice\n\n-- \nAlice Example | L1 | +31 20 555 0100\n\n"
            "On Mon, Mar 2, 2026 at 9:00 AM Example Support <support@example.test> wrote:\n"
            + "".join(f"> {line}\n" for line in text_of(notice).splitlines()))
    assert desk.ingest(answer(notice, body), now=LATER) == "MT-1 reply"

    [relayed] = desk.sent()
    assert relayed["From"].addresses[0].display_name == "Alice via Example Support"
    assert relayed["From"].addresses[0].addr_spec == "support@example.test"
    assert (bare(relayed["To"]), bare(relayed["Cc"])) == ("carla@customer.example", "dan@customer.example")
    assert relayed["Subject"] == "Re: [MT-1] Printer on fire"
    assert relayed["In-Reply-To"] == "<c-1@customer.example>"
    assert relayed["References"].split() == ["<c-1@customer.example>", ack["Message-ID"]]
    assert relayed["Auto-Submitted"] is None                  # a person's answer
    assert text_of(relayed).strip() == "Hello Carla,\n\nplease unplug it.\n\nAlice"

    ticket = desk.ticket()
    assert ticket["first_responded_at"] == LATER and ticket["status"] == "open"
    [_, message] = ticket["messages"]
    assert (message["kind"], message["direction"]) == ("agent", "out")
    assert message["body_text"] == "Hello Carla,\n\nplease unplug it.\n\nAlice"
    assert any(t == "replied" and "carla@customer.example, dan@customer.example" in d for t, d in desk.events())

    # The customer answers the relayed mail: it threads, reopens nothing, and tells Alice's tier.
    reply = eml("Re: [MT-1] Printer on fire", "Done, thanks.", message_id="<c-2@customer.example>",
                in_reply_to=relayed["Message-ID"], references=relayed["References"] + " " + relayed["Message-ID"])
    assert desk.ingest(reply, now="2026-03-02T09:10:00+00:00", auth=None) == "MT-1 reply"
    [told] = desk.sent()
    assert bare(told["To"]) == "l1-team@example.test" and "Done, thanks." in text_of(told)


def test_commands_apply_in_order_each_an_event_and_say_nothing_to_the_customer(desk):
    _, notice = desk.sent()
    raw = answer(notice, "#pending\n#severity S2\n#tag Printer\n#assign me\n\n> quoted notice\n")
    assert desk.ingest(raw, now=LATER) == "MT-1 reply"
    assert desk.sent() == []                                     # nothing to Carla, Alice assigned herself
    ticket = desk.ticket()
    assert (ticket["status"], ticket["severity"], ticket["tags"], ticket["assignee"]) == \
        ("pending", "S2", ["printer"], "alice@example.test")
    assert ticket["sla_state"] == "paused" and ticket["first_responded_at"] is None
    changes = [(t, d) for t, d in desk.events() if t in ("status", "severity", "tagged", "assigned")]
    assert changes == [("status", "new → pending (by alice@example.test)"),
                       ("severity", "S3 → S2 (by alice@example.test)"),
                       ("tagged", "printer (by alice@example.test)"),
                       ("assigned", "alice@example.test (by alice@example.test)")]
    assert ticket["messages"][-1]["kind"] == "internal"


def test_status_rules_from_pending_to_closed_and_a_follow_up(desk):
    _, notice = desk.sent()
    customer = iter(range(2, 20))

    def customer_writes(when: str, **kw) -> str:
        n = next(customer)
        return desk.ingest(eml("Re: [MT-1] Printer on fire", f"More {n}.", message_id=f"<c-{n}@customer.example>",
                               **kw), now=when, auth=None)

    def agent(command: str, n: int) -> None:
        desk.ingest(answer(notice, command, message_id=f"<a-{n}@example.test>"), now=LATER)

    agent("#pending", 1)
    assert customer_writes("2026-03-02T09:10:00+00:00") == "MT-1 reply"
    assert desk.ticket()["status"] == "open"                     # a customer reply reopens pending
    agent("#resolve", 2)
    assert desk.ticket()["status"] == "resolved" and desk.ticket()["resolved_at"]
    assert customer_writes("2026-03-02T09:20:00+00:00") == "MT-1 reply"
    assert desk.ticket()["status"] == "open" and desk.ticket()["resolved_at"] is None
    agent("#status closed", 3)
    assert desk.ticket()["status"] == "closed"
    desk.sent()

    # Closed stays closed: the customer's next mail opens MT-2, which refers to MT-1 ...
    assert customer_writes("2026-03-02T10:00:00+00:00", in_reply_to="<c-1@customer.example>") == "MT-2 new"
    assert any(t == "follow-up" and "MT-1" in d for t, d in desk.events("MT-2"))
    ack2 = [m for m in desk.sent() if bare(m["To"]) == "carla@customer.example"][-1]
    # ... and a reply to MT-2's acknowledgement (whose References name MT-1's mail too) stays in MT-2.
    assert customer_writes("2026-03-02T10:05:00+00:00", in_reply_to=ack2["Message-ID"],
                           references=ack2["References"] + " " + ack2["Message-ID"]) == "MT-2 reply"
    assert desk.ticket()["status"] == "closed" and len(desk.site.tickets()) == 2


def test_what_is_not_understood_gets_the_agent_a_short_reply(desk):
    _, notice = desk.sent()
    raw = answer(notice, "#frobnicate now\n#severity S9\n#assign mallory\n#tier L2\nHello Carla, on it.\n")
    desk.ingest(raw, now=LATER)
    sent = desk.sent()
    [reply] = [m for m in sent if bare(m["To"]) == "alice@example.test"]
    text = text_of(reply)
    assert reply["In-Reply-To"] == "<a-1@example.test>" and reply["Auto-Submitted"] == "auto-replied"
    for line in ("#frobnicate now", "unknown command #frobnicate", "#severity S9", "#assign mallory",
                 "no agent is called 'mallory'"):
        assert line in text
    assert "#tier L2" in text.partition("What was done:")[2]
    [relayed] = [m for m in sent if bare(m["To"]) == "carla@customer.example"]
    assert text_of(relayed).strip() == "Hello Carla, on it."
    [escalated] = [m for m in sent if bare(m["To"]) == "l2-team@example.test"]     # the new tier hears of it
    assert escalated["Subject"] == "[MT-1] Printer on fire" and text_of(escalated).startswith("Escalated")
    assert desk.ticket()["tier"] == "L2" and desk.ticket()["severity"] == "S3"
    assert any(t == "command-error" for t, _ in desk.events())


def test_mail_to_the_comment_address_is_an_internal_note(desk):
    _, notice = desk.sent()
    raw = answer(notice, "#tag hardware\nCalled her: it is the fuser. Ordering one.",
                 to="support-comment@example.test", message_id="<n-1@example.test>")
    assert desk.ingest(raw, now=LATER) == "MT-1 reply"
    [told] = desk.sent()
    assert bare(told["To"]) == "l1-team@example.test" and told["Subject"] == "[MT-1] Printer on fire"
    assert text_of(told).startswith("Internal note")
    assert "it is the fuser" in text_of(told)
    ticket = desk.ticket()
    note = ticket["messages"][-1]
    assert (note["kind"], note["body_text"]) == ("internal", "Called her: it is the fuser. Ordering one.")
    assert ticket["tags"] == ["hardware"] and ticket["first_responded_at"] is None
    assert ("note", "internal note by alice@example.test") in desk.events()


def test_a_note_that_names_no_ticket_is_answered_not_kept(desk):
    desk.sent()
    raw = eml("Remember the printers", "All of them.", sender=ALICE, to="support-comment@example.test",
              message_id="<n-2@example.test>")
    assert desk.ingest(raw, now=LATER) == "- ignored:note-without-ticket"
    [reply] = desk.sent()
    assert bare(reply["To"]) == "alice@example.test" and "names no ticket" in text_of(reply)
    assert len(desk.site.tickets()) == 1


FORGED = {
    "no Authentication-Results": None,
    "an untrusted authserv-id": "mx.evil.example; dkim=pass header.d=example.test; spf=pass "
                                "smtp.mailfrom=alice@example.test",
    "dkim=fail": "mx.example.test; dkim=fail (bad signature) header.d=example.test",
}


@pytest.mark.parametrize("auth", FORGED.values(), ids=FORGED.keys())
def test_a_forged_agent_changes_nothing_and_is_flagged(desk, auth):
    _, notice = desk.sent()
    before = desk.ticket()
    raw = answer(notice, "#status closed\n#severity S1\n#assign me\nPlease send us your password.")
    assert desk.ingest(raw, now=LATER, auth=auth) == "MT-1 reply"

    after = desk.ticket()
    for key in ("status", "severity", "tier", "assignee", "tags", "first_responded_at"):
        assert after[key] == before[key], key
    sent = desk.sent()
    assert [bare(m["To"]) for m in sent] == ["l1-team@example.test"]     # never to the customer
    assert "WARNING: this mail claims to come from the agent alice@example.test" in text_of(sent[0])
    assert after["messages"][-1]["kind"] == "customer"
    [(_, detail)] = [(t, d) for t, d in desk.events() if t == "agent-unverified"]
    assert "alice@example.test is an agent address" in detail and "no commands run" in detail


def test_a_forged_agent_cannot_use_a_ticket_tag(desk):
    desk.sent()
    raw = eml("[MT-1] Printer on fire", "#resolve\nResolved.", sender=ALICE, message_id="<f-1@evil.example>")
    assert desk.ingest(raw, now=LATER, auth=None) == "MT-2 new"
    assert desk.ticket()["status"] == "new" and len(desk.ticket()["messages"]) == 1
    types = [t for t, _ in desk.events("MT-2")]
    assert "tag-refused" in types and "agent-unverified" in types
    assert desk.ticket("MT-2")["status"] == "new"


def test_participants_may_use_the_tag_and_a_trusted_agent_may_too(desk):
    desk.sent()
    cc = eml("[MT-1] also mine", "Same here.", sender="dan@customer.example", message_id="<d-1@customer.example>")
    assert desk.ingest(cc, now=LATER, auth=None) == "MT-1 reply"
    by_tag = eml("[MT-1] Printer on fire", "#severity S2", sender=ALICE, message_id="<a-9@example.test>")
    assert desk.ingest(by_tag, now=LATER) == "MT-1 reply"
    assert desk.ticket()["severity"] == "S2"


def test_an_agents_out_of_office_is_neither_relayed_nor_a_command(desk):
    _, notice = desk.sent()
    raw = answer(notice, "#resolve\nI am away until Monday.", headers={"Auto-Submitted": "auto-replied"})
    assert desk.ingest(raw, now=LATER) == "MT-1 reply"
    assert desk.sent() == [] and desk.ticket()["status"] == "new"


def test_a_bulk_import_records_agent_mail_but_sends_nothing(desk):
    _, notice = desk.sent()
    folder = desk.site.dir / "history"
    folder.mkdir()
    raw = answer(notice, "#severity S2\nHello Carla, on it.")
    (folder / "1.eml").write_bytes(f"Authentication-Results: {TRUSTED}\r\n".encode() + raw)
    desk.site.ok("import", str(folder), "--no-progress", now=LATER)
    assert desk.sent() == []
    ticket = desk.ticket()
    assert ticket["severity"] == "S2" and ticket["messages"][-1]["kind"] == "agent"
    assert any(t == "not-relayed" and "bulk import" in d for t, d in desk.events())
    assert json.loads(desk.site.ok("outbox", "list", "--json")) == []


def test_an_agent_may_open_a_ticket_with_commands(desk):
    desk.sent()
    raw = eml("ACME called: VPN down", "#severity S1\n#tier L2\nAnna from ACME called, nobody can log in.",
              sender=ALICE, message_id="<a-20@example.test>")
    assert desk.ingest(raw, now=LATER) == "MT-2 new"
    ticket = desk.ticket("MT-2")
    assert (ticket["severity"], ticket["tier"]) == ("S1", "L2")
    assert ("severity", "S3 → S1 (by alice@example.test)") in desk.events("MT-2")
    sent = [bare(m["To"]) for m in desk.sent()]
    assert sent.count("l2-team@example.test") == 1 and "l1-team@example.test" not in sent
