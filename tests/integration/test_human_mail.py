"""People's mail stays people's mail (issue 17, items 2 and 3).

Outlook and Exchange mark ordinary mail with X-Auto-Response-Suppress: that
holds back our acknowledgement and nothing else. And mail between two
mailtriage installs (a customer's helpdesk, the L4 vendor's) reaches the
other side: each install has its own loop id, and an agent's answer carries
no X-Loop at all.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import yaml

from helpers import Site, eml, make_site

NOW = "2026-03-02T09:00:00+00:00"
LATER = "2026-03-02T09:30:00+00:00"
TRUSTED = "Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n"
OUTLOOK = {"X-Auto-Response-Suppress": "All", "X-MS-Has-Attach": "", "Thread-Index": "AdqCustomer"}


class Desk:
    """A site, the mail handed to it, and what it has sent since the last look."""

    def __init__(self, site: Site):
        self.site, self.count, self.seen = site, 0, 0

    def ingest(self, raw: bytes, now: str = NOW) -> str:
        self.count += 1
        path = self.site.dir / f"in-{self.count}.eml"
        path.write_bytes(raw)
        [line] = self.site.ingest(path, now=now)
        return line

    def sent(self) -> list[EmailMessage]:
        files = self.site.outbox_files()
        new, self.seen = files[self.seen:], len(files)
        return [email.message_from_bytes(raw, policy=email.policy.default) for raw in new]  # type: ignore[misc]

    def events(self, ref: str) -> list[str]:
        return [e["type"] for e in self.site.ticket(ref)["events"]]


def raw_of(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=email.policy.SMTP)


# -- item 2: X-Auto-Response-Suppress --------------------------------------------------

def test_outlook_mail_with_x_auto_response_suppress_is_handled_as_a_persons_mail(tmp_path: Path) -> None:
    desk = Desk(make_site(tmp_path / "site", agent_notices="[new, reply]"))
    opened = desk.ingest(eml("Printer on fire", "It is smoking.", message_id="<o-1@customer.example>",
                             headers=OUTLOOK))
    assert opened == "MT-1 new"
    [notice] = desk.sent()                                   # the team hears of it; the customer gets no ack
    assert notice["To"] == "l1-team@example.test"
    not_acked = [e["detail"] for e in desk.site.ticket("MT-1")["events"] if e["type"] == "not-acknowledged"]
    assert not_acked == ["X-Auto-Response-Suppress asks for no automatic reply"]

    # Alice answers from Outlook (it adds the header to her mail too) and sets the ticket pending.
    answer = eml("RE: [MT-1] Printer on fire", "#pending\nPlease unplug it and tell us when it is cool.",
                 sender="Alice <alice@example.test>", message_id="<a-1@example.test>",
                 in_reply_to=notice["Message-ID"], references=notice["Message-ID"], headers=OUTLOOK)
    assert desk.ingest(TRUSTED.encode() + answer, now=LATER) == "MT-1 reply"
    [relayed] = desk.sent()
    assert relayed["To"] == "carla@customer.example"
    assert "Please unplug it" in relayed.get_content()
    assert desk.site.ticket("MT-1")["status"] == "pending"

    # Carla's reply, from Outlook: the ticket leaves pending and the team hears of it.
    reply = eml("RE: [MT-1] Printer on fire", "It is cool now, still no printing.",
                message_id="<o-2@customer.example>", in_reply_to=relayed["Message-ID"],
                references=f"<o-1@customer.example> {relayed['Message-ID']}", headers=OUTLOOK)
    assert desk.ingest(reply, now=LATER) == "MT-1 reply"
    ticket = desk.site.ticket("MT-1")
    assert ticket["status"] == "open"
    assert "auto-reply-received" not in desk.events("MT-1")
    [told] = desk.sent()
    assert told["To"] == "l1-team@example.test" and "still no printing" in told.get_content()


# -- item 3: two mailtriage installs ---------------------------------------------------

def vendor_site(root: Path) -> Site:
    """Another company's mailtriage, on its defaults: help@partner.example, tickets VX-n."""
    site = make_site(root)
    data = yaml.safe_load(site.config.read_text())
    data["ticket_prefix"] = "VX"
    data["mailboxes"] = [{"name": "help", "address": "help@partner.example",
                          "comment_address": "help-comment@partner.example", "queue": "support"}]
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return site


def test_a_second_mailtriage_install_takes_our_mail_and_ours_still_stops_its_own(tmp_path: Path) -> None:
    ours, theirs = Desk(make_site(tmp_path / "ours")), Desk(vendor_site(tmp_path / "vendor"))
    # The vendor's helpdesk writes to us; we acknowledge, and Alice answers.
    assert ours.ingest(eml("Licence server down", "Our licence server stopped.",
                           sender="Partner Help <help@partner.example>",
                           message_id="<p-1@partner.example>")) == "MT-1 new"
    [ack] = ours.sent()
    assert ack["X-Loop"] == "support@example.test"             # our own loop id, not every install's
    answer = eml("Re: [MT-1] Licence server down", "Restarted it; try again please.",
                 sender="Alice <alice@example.test>", message_id="<a-7@example.test>",
                 in_reply_to=ack["Message-ID"], references=f"<p-1@partner.example> {ack['Message-ID']}")
    assert ours.ingest(TRUSTED.encode() + answer, now=LATER) == "MT-1 reply"
    [relayed] = ours.sent()
    assert relayed["To"] == "help@partner.example"
    assert relayed["X-Loop"] is None and relayed["Auto-Submitted"] is None   # a person's answer

    # On the vendor's side: our acknowledgement is automatic mail (a ticket, no answer),
    # Alice's answer is a person's mail; neither is dropped as the vendor's own loop.
    assert theirs.ingest(raw_of(ack)) == "VX-1 new"
    assert theirs.ingest(raw_of(relayed), now=LATER) == "VX-1 reply"
    vendor_ticket = theirs.site.ticket("VX-1")
    assert [m["from"] for m in vendor_ticket["messages"]] == ["support@example.test"] * 2
    assert "not-acknowledged" in theirs.events("VX-1")

    # Our own answer coming back to us is still a loop, without any X-Loop on it:
    # From: is our address, and its Message-ID is in our outbox even when From: is rewritten.
    assert ours.ingest(raw_of(relayed), now=LATER) == "- ignored:loop"
    rewritten = raw_of(relayed).replace(b"support@example.test>", b"list@lists.partner.example>", 1)
    assert b"From: Alice via Example Support <list@lists.partner.example>" in rewritten
    assert ours.ingest(rewritten, now=LATER) == "- ignored:loop"
    assert len(ours.site.ticket("MT-1")["messages"]) == 2
