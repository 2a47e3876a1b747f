"""guards: which mail is automatic, and so must never get an auto-reply.

Each message here goes through the real parse() first: the guards see what
the pipeline will see.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailtriage.mail.guards import (
    AUTOMATIC,
    OUT_OF_OFFICE,
    automatic_reason,
    automatic_reasons,
    is_bounce,
    is_out_of_office,
    refuses_auto_reply,
)
from mailtriage.mail import bounces
from mailtriage.model import ParsedMail
from mailtriage.mail.parse import parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
OWN = frozenset({"Support@Helpdesk.example"})
LOOP_ID = "helpdesk.example"


def mail(*extra: str, sender: str = "Anna Schmidt <anna@customer.example>",
         subject: str = "Printer on floor 3 is broken") -> ParsedMail:
    headers = [f"From: {sender}", "To: support@helpdesk.example", f"Subject: {subject}",
               "Message-ID: <human.1@customer.example>", "Date: Mon, 13 May 2024 09:00:00 +0200", *extra]
    return parse(("\n".join(headers) + "\n\nIt does not print.\n").encode())


def test_human_mail_is_not_automatic() -> None:
    human = mail("X-Auto-Response-Suppress: DR, RN, NRN", "Auto-Submitted: no", "Precedence: first-class",
                 "X-Loop: someone-else.example")
    assert automatic_reason(human, OWN, LOOP_ID) is None
    assert automatic_reasons(human, OWN, LOOP_ID) == ()
    assert not is_out_of_office(human)
    assert not is_bounce(human)
    assert not refuses_auto_reply(human)


@pytest.mark.parametrize("value", ["All", "DR, OOF, AutoReply", "autoreply"])
def test_x_auto_response_suppress_asks_for_no_reply_but_is_human_mail(value: str) -> None:
    """Exchange and Outlook put it on people's mail: it was reported as the
    reason `x-auto-response-suppress` (automatic mail); now the mail is a
    person's, and only the acknowledgement is held back."""
    wish = mail(f"X-Auto-Response-Suppress: {value}")
    assert automatic_reason(wish, OWN, LOOP_ID) is None
    assert automatic_reasons(wish, OWN, LOOP_ID) == ()
    assert refuses_auto_reply(wish)


def test_x_auto_response_suppress_oof_alone_allows_an_acknowledgement() -> None:
    assert not refuses_auto_reply(mail("X-Auto-Response-Suppress: OOF, DR"))


def test_a_real_reply_from_mutt_is_not_automatic() -> None:
    reply = parse((FIXTURES / "mutt-koi8r-reply.eml").read_bytes())
    assert automatic_reason(reply, OWN, LOOP_ID) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (["Auto-Submitted: auto-generated"], "auto-submitted"),
        (["Auto-Submitted: auto-replied (vacation)"], "auto-submitted"),
        (["Auto-Submitted: auto-notified; owner-email=x@y.example"], "auto-submitted"),
        (["Precedence: bulk"], "precedence"),
        (["Precedence: JUNK"], "precedence"),
        (["Precedence: list"], "precedence"),
        (["Precedence: auto_reply"], "precedence"),
        (["List-Id: Users <users.lists.example>"], "list"),
        (["List-Unsubscribe: <mailto:leave@lists.example>"], "list"),
        (["List-Post: NO"], "list"),
        (["X-Loop: HelpDesk.Example"], "x-loop"),
        (["X-Loop: other.example", "X-Loop: helpdesk.example"], "x-loop"),
        (["Return-Path: <>"], "null-sender"),
        (["Content-Type: multipart/report; report-type=disposition-notification; boundary=x"], "report"),
    ],
)
def test_each_header_reason(headers: list[str], reason: str) -> None:
    assert automatic_reason(mail(*headers), OWN, LOOP_ID) == reason


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example", "Mail Delivery Subsystem <postmaster@mx.example>",
        "no-reply@shop.example", "NoReply <noreply@shop.example>", "noreply-alerts@cloud.example",
        "do-not-reply@bank.example", "DoNotReply@bank.example", "do_not_reply@bank.example",
        "bounces+12345-abc@lists.example", "bounce@news.example",
    ],
)
def test_daemon_and_no_reply_senders(sender: str) -> None:
    assert automatic_reason(mail(sender=sender), OWN, LOOP_ID) in ("mailer-daemon", "bounce")


@pytest.mark.parametrize("sender", ["noreplyanna@customer.example", "bouncer-team@club.example",
                                    "postmasters-guild@example.org", "daemon@customer.example"])
def test_people_with_similar_names_are_not_daemons(sender: str) -> None:
    assert automatic_reason(mail(sender=sender), OWN, LOOP_ID) is None


def test_own_address_is_case_insensitive() -> None:
    ours = mail(sender="Helpdesk <SUPPORT@helpdesk.EXAMPLE>")
    assert automatic_reason(ours, OWN, LOOP_ID) == "own-address"
    assert automatic_reason(ours) is None  # no own addresses configured


def test_x_loop_needs_a_loop_id() -> None:
    looped = mail("X-Loop: helpdesk.example")
    assert automatic_reason(looped, OWN, None) is None
    assert automatic_reason(looped, OWN, LOOP_ID) == "x-loop"


def test_dsn_is_a_bounce_first() -> None:
    dsn = parse((FIXTURES / "dsn-postfix.eml").read_bytes())
    assert is_bounce(dsn)
    assert automatic_reason(dsn, OWN, LOOP_ID) == "bounce"
    assert automatic_reasons(dsn, OWN, LOOP_ID) == ("bounce", "auto-submitted", "mailer-daemon", "null-sender")
    assert not is_out_of_office(dsn)  # Postfix marks bounces auto-replied too


def bounce_recipients(raw: bytes) -> set[str]:
    """What the pipeline's bounce step learns: the permanently failed recipients."""
    return set(bounces.read(raw, parse(raw)).permanent)


def test_bounce_recipients_from_a_dsn() -> None:
    assert bounce_recipients((FIXTURES / "dsn-postfix.eml").read_bytes()) == {"gone@customer.example"}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        (FIXTURES / "attachments.eml").read_bytes(),
        # flufl.bounce's Yale detector raises IndexError on a From: like this one
        b"From: \nSubject: hello\n\nbody\n",
    ],
)
def test_bounce_recipients_never_raises(raw: bytes) -> None:
    assert bounce_recipients(raw) == set()


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        (["Auto-Submitted: auto-replied"], "Re: Printer"),
        (["X-Autoreply: yes"], "Re: Printer"),
        (["X-Autorespond: Printer"], "Printer"),
        ([], "Out of Office: Printer on floor 3"),
        ([], "Automatic reply: Printer on floor 3"),
        ([], "AutoReply: Printer"),
        ([], "Auto-Reply: Printer"),
        ([], "Abwesenheitsnotiz: Drucker"),
        ([], "Automatische Antwort: Drucker"),
        ([], "Afwezig: printer"),
        ([], "Réponse automatique : Imprimante"),
        ([], "RE: Out of the office"),
    ],
)
def test_out_of_office(headers: list[str], subject: str) -> None:
    assert is_out_of_office(mail(*headers, subject=subject))


@pytest.mark.parametrize("subject", ["Printer is out of paper", "Re: automatic replies are broken?",
                                     "Absence request for Friday"])
def test_ordinary_subjects_are_not_out_of_office(subject: str) -> None:
    assert not is_out_of_office(mail(subject=subject))


@pytest.mark.parametrize("table", [AUTOMATIC, OUT_OF_OFFICE])
def test_tables_name_and_describe_each_check(table) -> None:
    names = [check.name for check in table]
    assert len(names) == len(set(names))
    assert all(check.description for check in table)


def relayed(hops: int, *extra: str) -> ParsedMail:
    """A message that passed `hops` relays, each adding its Received on top."""
    received = [f"Received: from relay{i}.example (relay{i}.example [192.0.2.{i % 250 + 1}]) by "
                f"relay{i + 1}.example (Postfix) with ESMTP id Q{i}; Mon, 13 May 2024 09:00:00 +0200"
                for i in reversed(range(hops))]
    return mail(*received, *extra)


def test_fifty_relays_is_still_human_mail() -> None:
    assert automatic_reason(relayed(50), OWN, LOOP_ID) is None
    assert automatic_reasons(relayed(50), OWN, LOOP_ID) == ()


def test_more_than_fifty_relays_is_a_mail_loop() -> None:
    looped = relayed(51)
    assert automatic_reason(looped, OWN, LOOP_ID) == "hop-count"
    assert automatic_reasons(looped, OWN, LOOP_ID) == ("hop-count",)
    assert not is_out_of_office(looped)


def test_hop_count_is_reported_before_any_other_reason() -> None:
    # Two auto-responders answering each other through a forwarder: the pipeline
    # acts on the first reason, and a loop must be dropped, not ticketed.
    looped = relayed(60, "Auto-Submitted: auto-replied", "Precedence: bulk")
    assert automatic_reason(looped, OWN, LOOP_ID) == "hop-count"
    assert automatic_reasons(looped, OWN, LOOP_ID) == ("hop-count", "auto-submitted", "precedence")
    dsn_in_a_loop = parse((FIXTURES / "dsn-postfix.eml").read_bytes().replace(
        b"Received:", b"".join(b"Received: from r%d.example by r%d.example\n" % (i, i) for i in range(51))
        + b"Received:", 1))
    assert automatic_reason(dsn_in_a_loop, OWN, LOOP_ID) == "hop-count"


def test_the_hop_limit_is_a_parameter() -> None:
    assert automatic_reason(relayed(4), OWN, LOOP_ID, max_hops=3) == "hop-count"
    assert automatic_reason(relayed(3), OWN, LOOP_ID, max_hops=3) is None
    assert automatic_reason(relayed(51), OWN, LOOP_ID, max_hops=100) is None
    assert automatic_reasons(relayed(4), OWN, LOOP_ID, max_hops=3) == ("hop-count",)


def test_every_received_header_counts_even_one_nobody_can_read() -> None:
    garbage = [f"Received: ((( unbalanced {i}" for i in range(51)]
    assert automatic_reason(mail(*garbage), OWN, LOOP_ID) == "hop-count"
    other_trace = [f"X-Received: by 10.0.0.{i} with SMTP id x{i}" for i in range(60)]
    assert automatic_reason(mail(*other_trace), OWN, LOOP_ID) is None     # only Received counts
