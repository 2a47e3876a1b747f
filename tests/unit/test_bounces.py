"""bounces.read: what failed, for whom, and which of our messages it was."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from helpers import dsn, qmail_bounce
from mailtriage.mail import bounces
from mailtriage.mail import guards
from mailtriage.mail.parse import parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
OURS = "<mt.0123abcd@example.test>"


def read(raw: bytes) -> bounces.Bounce:
    mail = parse(raw)
    assert guards.is_bounce(mail)
    return bounces.read(raw, mail)


def test_rfc3464_dsn_names_the_original_and_the_hard_failure() -> None:
    report = read(dsn(OURS, "Anna@Customer.example"))
    assert report.permanent == {"anna@customer.example"} and report.hard
    assert report.temporary == frozenset()
    assert report.original_ids[0] == OURS
    assert "<dsn-1@mx.customer.example>" not in report.original_ids     # never the bounce itself


def test_a_delay_is_temporary() -> None:
    report = read(dsn(OURS, "anna@customer.example", action="delayed", status="4.4.7"))
    assert report.temporary == {"anna@customer.example"} and not report.hard


def test_qmail_notice_quotes_the_original_inline() -> None:
    report = read(qmail_bounce(OURS, "gone@customer.example"))
    assert report.permanent == {"gone@customer.example"}
    assert report.original_ids == (OURS,)


def test_enclosed_message_and_own_references() -> None:
    raw = (b"From: postmaster@mx.example\nSubject: Undeliverable: Printer\nIn-Reply-To: <irt@example.test>\n"
           b"References: <first@x> <last@x>\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\n"
           b"Your message did not reach some or all of the intended recipients.\n--b\n"
           b"Content-Type: message/rfc822\n\nMessage-ID: <enclosed@example.test>\nSubject: x\n\nbody\n--b--\n")
    report = read(raw)                          # a vendor format: no DSN, postmaster + failure subject
    assert report.original_ids == ("<enclosed@example.test>", "<irt@example.test>", "<last@x>", "<first@x>")


def test_postfix_fixture() -> None:
    report = read((FIXTURES / "dsn-postfix.eml").read_bytes())
    assert report.permanent == {"gone@customer.example"}
    assert report.original_ids == ("<mt-42.reply@helpdesk.example>",)


@pytest.mark.parametrize("subject", ["Undeliverable: Printer", "Delivery Status Notification (Failure)",
                                     "Mail delivery failed: returning message to sender", "failure notice"])
def test_vendor_bounce_subjects_count_only_from_daemon_like_senders(subject: str) -> None:
    assert guards.is_bounce(parse(f"From: postmaster@mx.example\nSubject: {subject}\n\nx\n".encode()))
    assert guards.is_bounce(parse(f"From: Outlook <x@y.example>\nReturn-Path: <>\nSubject: {subject}\n\nx\n".encode()))
    human = parse(f"From: anna@customer.example\nSubject: {subject}\n\nmy mail bounced, help\n".encode())
    assert not guards.is_bounce(human)


@pytest.mark.parametrize("raw", [b"", b"\x00\xff" * 500, b"From: MAILER-DAEMON@x\n\n" + b"\x00" * 1000,
                                 b"From: MAILER-DAEMON@x\nContent-Type: multipart/report; boundary=q\n\n--q\n"
                                 b"Content-Type: text/rfc822-headers\n\nMessage-ID: \x00<a@b>\n--q--\n"])
def test_never_raises(raw: bytes) -> None:
    report = bounces.read(raw, parse(raw))
    assert isinstance(report.original_ids, tuple)


def test_every_corpus_bounce_is_read(corpus_dir: Path) -> None:
    with (corpus_dir / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        paths = [row["path"] for row in csv.DictReader(handle)]
    found = {}
    for path in paths:
        raw = (corpus_dir / path).read_bytes()
        mail = parse(raw)
        if guards.is_bounce(mail):
            found[path] = bounces.read(raw, mail)
    assert len(found) >= 15
    assert sum(1 for report in found.values() if report.hard) >= 10
    assert found["mail-parser/mail_malformed_2.eml"].original_ids == (
        "<004801d1fc84$01c934ac$b247f0b7$@infospacemail.com>",)
