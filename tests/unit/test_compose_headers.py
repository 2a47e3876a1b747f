"""compose's header registry writes some values as given instead of parsing
and folding them (notify/compose.py, `_Registry`): each such value must come
out byte for byte as the stdlib's registry writes it, and whole mails as
compose wrote them with the stdlib's registry. A plain mail (text only, headers
kept as given, a 7bit body) compose writes itself, without the email package
(`_plain`): the same bytes again."""

from __future__ import annotations

import random
import string
from datetime import datetime, timedelta, timezone
from email.headerregistry import HeaderRegistry
from email.policy import SMTP, Policy
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtriage.errors import HeaderInjection
from mailtriage.notify import compose as composing
from mailtriage.notify.compose import Enclosure, Outgoing, compose

STDLIB = SMTP.clone(cte_type="7bit")              # the policy compose had before its own registry
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

atom = st.text(string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)
label = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=8)
address = st.builds(lambda l, d: f"{'.'.join(l)}@{'.'.join(d)}", st.lists(atom, min_size=1, max_size=3),
                    st.lists(label, min_size=1, max_size=3))
printable = st.text(string.printable, max_size=80)
words = st.text(string.ascii_letters + string.digits + " ", max_size=30)
dates = st.builds(lambda s, h: format_datetime((datetime(1990, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=s))
                                               .astimezone(timezone(timedelta(minutes=15 * h)))),
                  st.integers(0, 60 * 365 * 86400), st.integers(-48, 56))
VALUES = {
    "Subject": printable, "X-Loop": printable, "Auto-Submitted": printable, "In-Reply-To": printable,
    "References": st.one_of(printable, st.lists(address.map(lambda a: f"<{a}>"), min_size=1, max_size=3)
                            .map(" ".join)),
    "Message-ID": st.one_of(printable, address.map(lambda a: f"<{a}>")),
    "To": st.one_of(printable, st.lists(address, min_size=1, max_size=3).map(", ".join)),
    "Reply-To": st.one_of(printable, address),
    "From": st.one_of(printable, st.builds(lambda n, a: f"{n} <{a}>", words, address)),
    "Date": st.one_of(printable, dates),
    "Content-Type": st.one_of(printable, st.sampled_from(["text/plain", "text/html", 'text/plain; charset="utf-8"',
                                                          'text/html; charset="utf-8"', "text/plain; charset=utf-8"])),
    "Content-Transfer-Encoding": st.one_of(printable, st.sampled_from(["7bit", "quoted-printable", "base64"])),
    "MIME-Version": st.one_of(printable, st.just("1.0")),
}


def stdlib_fold(name: str, value: str) -> str | None:
    try:
        return HeaderRegistry()(name, value).fold(policy=STDLIB)
    except Exception:  # noqa: BLE001 - the stdlib's parser gives up on some garbage
        return None


@pytest.mark.parametrize("name", sorted(VALUES))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_value_kept_as_given_is_what_the_stdlib_writes(name: str, data: st.DataObject) -> None:
    value = data.draw(VALUES[name])
    try:
        header = composing._Registry()(name, value)
    except Exception:  # noqa: BLE001 - then the stdlib's gave up as well
        assert stdlib_fold(name, value) is None
        return
    if isinstance(header, composing._Verbatim):
        assert header.fold(policy=composing._POLICY) == stdlib_fold(name, value)


def test_the_usual_values_are_kept_as_given() -> None:
    registry = composing._Registry()
    for name, value in [("Subject", "[MT-12] SLA warning: Printer on fire"), ("To", "l1-team@example.test"),
                        ("From", "Support <support@example.test>"), ("Date", format_datetime(T0)),
                        ("Message-ID", "<mt.0123abcd@example.test>"), ("X-Loop", "mailtriage"),
                        ("Content-Type", 'text/plain; charset="utf-8"'), ("Content-Transfer-Encoding", "7bit"),
                        ("MIME-Version", "1.0")]:
        assert isinstance(registry(name, value), composing._Verbatim), name


@settings(max_examples=200, deadline=None)
@given(subject=st.text(max_size=100), name=st.text(max_size=30), body=st.text(max_size=200),
       to=st.lists(address, min_size=1, max_size=3), ref=st.one_of(st.none(), address))
def test_a_composed_mail_is_the_stdlibs_byte_for_byte(subject: str, name: str, body: str, to: list[str],
                                                       ref: str | None) -> None:
    mail = Outgoing(from_addr="support@example.test", from_name=name, to=tuple(to), subject=subject, body=body,
                    in_reply_to=f"<{ref}>" if ref else None, references=(f"<{ref}>",) if ref else (),
                    auto_submitted="auto-generated", loop_id="mailtriage", reply_to="support+t1@example.test")
    assert both_ways(mail) == both_ways(mail, STDLIB)


@settings(max_examples=50, deadline=None)
@given(body=st.text(max_size=200), html=st.one_of(st.none(), st.text(max_size=200)),
       files=st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=100)), max_size=2))
def test_a_mail_with_html_and_attachments_is_the_stdlibs_byte_for_byte(
        body: str, html: str | None, files: list[tuple[str, bytes]]) -> None:
    enclosures = tuple(Enclosure(name, "application/pdf", data, f"<f{n}@example.test>" if n == 0 else None)
                       for n, (name, data) in enumerate(files))
    mail = Outgoing(from_addr="support@example.test", from_name="Support", to=("carla@example.test",),
                    subject="Invoice", body=body, html=html, attachments=enclosures)
    assert both_ways(mail) == both_ways(mail, STDLIB)


def both_ways(mail: Outgoing, policy: Policy | None = None) -> bytes | None:
    """The mail as compose writes it, with its own registry or (`policy`) the stdlib's;
    a multipart's boundary drawn from the same seed."""
    original = composing._POLICY
    composing._POLICY = policy or original
    random.seed(5)
    try:
        return compose(mail, T0, "<mt.1@example.test>")
    except HeaderInjection:
        return None
    finally:
        composing._POLICY = original


# Mostly what a notice holds, with the characters that decide the path: line breaks, long lines, non-ASCII.
ascii_text = st.text(string.printable + "\r\n\x0b\x0c", max_size=300)
lines = st.lists(st.one_of(st.text(string.ascii_letters + " ", max_size=90),
                           st.sampled_from(["", "é", "-- ", "x" * 78, "y" * 79])), max_size=12).map("\n".join)
bodies = st.one_of(ascii_text, lines, st.text(max_size=50))
subjects = st.one_of(st.text(string.ascii_letters + string.digits + " []-:", max_size=90), st.text(max_size=30))
names = st.one_of(st.just("Support"), st.text(string.ascii_letters + " ", max_size=20), st.text(max_size=10))


@settings(max_examples=400, deadline=None)
@given(subject=subjects, name=names, body=bodies, to=st.lists(address, min_size=1, max_size=3),
       refs=st.lists(address, max_size=3), loop=st.one_of(st.none(), st.just("mailtriage")),
       offset=st.integers(-12, 14))
def test_a_plain_mail_is_the_stdlibs_byte_for_byte(subject: str, name: str, body: str, to: list[str],
                                                     refs: list[str], loop: str | None, offset: int) -> None:
    ids = tuple(f"<{ref}>" for ref in refs)
    mail = Outgoing(from_addr="support@example.test", from_name=name, to=tuple(to), subject=subject, body=body,
                    in_reply_to=ids[-1] if ids else None, references=ids, auto_submitted="auto-generated",
                    loop_id=loop, reply_to="support+t1@example.test")
    now = T0.astimezone(timezone(timedelta(hours=offset)))
    assert compose(mail, now, "<mt.1@example.test>") == both_ways_at(mail, now)


def both_ways_at(mail: Outgoing, now: datetime) -> bytes | None:
    original = composing._POLICY
    composing._POLICY = STDLIB
    try:
        return compose(mail, now, "<mt.1@example.test>")
    finally:
        composing._POLICY = original


def test_an_sla_notice_is_written_without_the_email_package() -> None:
    body = ("SLA warning: first response due Mon 2026-03-02 10:15 CET\n\n"
            'MT-12 "Printer on fire" is close to its first response target.\n\n-- \nSupport (mailtriage)\n')
    mail = Outgoing(from_addr="support@example.test", from_name="Support", to=("l1-team@example.test",),
                    subject="[MT-12] Printer on fire", body=body, in_reply_to="<a.1@customer.example>",
                    references=("<a.1@customer.example>",), auto_submitted="auto-generated", loop_id="mailtriage")
    headers = composing._headers(mail, T0, "<mt.1@example.test>")
    assert composing._plain(mail, headers) is not None
    assert compose(mail, T0, "<mt.1@example.test>") == both_ways(mail, STDLIB)


def test_a_mail_the_stdlib_would_encode_is_left_to_it() -> None:
    for changes in ({"body": "Grüße\n"}, {"body": "x" * 79 + "\n"}, {"subject": "Grüße"},
                    {"from_name": "Jansen, Pieter"}, {"html": "<p>hi</p>"}):
        mail = Outgoing(**{"from_addr": "support@example.test", "from_name": "Support", "to": ("a@example.test",),
                           "subject": "Hello", "body": "Hi\n", **changes})
        assert composing._plain(mail, composing._headers(mail, T0, "<mt.1@example.test>")) is None, changes
        assert compose(mail, T0, "<mt.1@example.test>") == both_ways(mail, STDLIB), changes
