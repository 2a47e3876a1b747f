"""Mutated corpus messages, and what must hold for each: shared by the suite's
property test (tests/unit/test_fuzz.py, a few seconds) and the long run
(bench/fuzz.py).

A mutation takes a real message and breaks it the way mail breaks: bytes
flipped to NUL, CR, LF or 8-bit; MIME, encoded-word and header syntax
spliced in; slices cut, doubled or truncated. `check()` runs the pure part
of the flow — limits, parse, guards, the delivery path, bounces, thread,
quote and signature trimming, classify, and the composition of an
acknowledgement — and asserts its invariants.
"""

from __future__ import annotations

import csv
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import strategies as st

from mailtriage import thread
from mailtriage.mail import bounces
from mailtriage.mail import guards
from mailtriage.mail import limits
from mailtriage.mail import quotes
from mailtriage.mail import received
from mailtriage.classify import RuleSet, classify, load_rules
from mailtriage.notify.compose import Outgoing, compose, deliverable
from mailtriage.mail.parse import parse
from mailtriage.config.values import Limits
from mailtriage.config.builtin import builtin
from mailtriage.store import queries

CONTROL = re.compile("[\x00-\x1f\x7f]")
MESSAGE_ID = re.compile(r"<[^<>\s]+>")
LIMITS = Limits()
OWN = frozenset({"support@example.test"})

SNIPPETS = [
    b"\r\n", b"\n", b"\n\n", b"\r", b"\x00", b"\xff", b"\xc3", b"\xe2\x80\xae", b"\t", b" ",
    b"--", b"--sep\n", b"--sep--\n", b'Content-Type: multipart/mixed; boundary="sep"\n',
    b"Content-Type: message/rfc822\n\n", b"Content-Type: multipart/digest; boundary=d\n\n--d\n",
    b"Content-Type: text/plain; charset=x-unknown\n", b"; charset=utf-7", b"; charset*=''\x00",
    b"Content-Transfer-Encoding: base64\n", b"Content-Transfer-Encoding: quoted-printable\n",
    b'Content-Disposition: attachment; filename="../../etc/passwd"\n', b"filename*=utf-8''%2e%2e%2f%00",
    b"=?utf-8?b?", b"=?utf-8?q?", b"?=", b"=?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?=", b"=0D=0A",
    b"=?x-unknown?q?=FF=FE?=", b"Subject: ", b"From: ", b"To: ", b"Reply-To: ", b"In-Reply-To: ",
    b"References: ", b"Message-ID: ", b"<", b">", b"@", b",", b";", b":", b'"', b"(", b")",
    b"[MT-1]", b"Re: ", b"{{ 7*7 }}", b"{% for x in range(9) %}", b"Auto-Submitted: auto-replied\n",
    b"Precedence: bulk\n", b"X-Loop: mailtriage\n", b"From: MAILER-DAEMON@mx.example\n",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n--r\n",
    b"Content-Type: message/delivery-status\n\nAction: failed\nStatus: 5.1.1\nFinal-Recipient: rfc822; a@b.example\n",
    b"a" * 64 + b"!", b"<html><body><table><tr><td>", b"&#0;&#xD800;",
]


def corpus_messages(corpus: Path | None = None) -> list[bytes]:
    root = corpus or Path(os.environ.get("MAILTRIAGE_CORPUS",
                                         Path(__file__).resolve().parents[1].parent / "shared" / "corpus"))
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding="utf-8") as handle:
        return [(root / row["path"]).read_bytes() for row in csv.DictReader(handle)]


@st.composite
def mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """One mutated copy of `data`: up to eight edits at random places."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        where = draw(st.integers(0, len(out)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "double", "truncate"]))
        if kind == "flip" and out:
            out[min(where, len(out) - 1)] = draw(st.sampled_from([0, 9, 10, 13, 32, 45, 58, 61, 63, 0x80, 0xff]))
        elif kind == "insert":
            out[where:where] = draw(st.one_of(st.sampled_from(SNIPPETS), st.binary(max_size=16)))
        elif kind == "delete":
            del out[where:where + draw(st.integers(1, 64))]
        elif kind == "double":
            out[where:where] = out[where:where + draw(st.integers(1, 256))]
        elif kind == "truncate" and draw(st.booleans()):
            del out[where:]
    return bytes(out)


def mutated(messages: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.sampled_from(messages).flatmap(mutation)


def default_rules() -> RuleSet:
    return load_rules(builtin("config") / "rules.yaml")


def check(raw: bytes, rules: RuleSet) -> str:
    """parse → guards → thread → classify → acknowledgement, with invariants.
    Returns a one-word summary (for the long run's counts)."""
    breach = limits.check_raw(raw, LIMITS)
    mail = parse(raw)
    assert MESSAGE_ID.fullmatch(mail.message_id), mail.message_id
    assert not [d for d in mail.defects if d.startswith("parse-error")], mail.defects
    for name, value in mail.headers:
        assert not CONTROL.search(name + value), (name, value)
    for text in (mail.subject, mail.from_name, mail.body_text):
        text.encode("utf-8")                                   # no lone surrogates
    assert "\x00" not in mail.body_text
    for attachment in mail.attachments:
        assert attachment.filename and not {"/", "\\", "\x00"} & set(attachment.filename)
        assert attachment.filename not in (".", "..") and len(attachment.sha256) == 64
        assert attachment.size == len(attachment.payload)
    if breach is None:
        breach = limits.check_parsed(mail, LIMITS)
    queries.content_key(mail)
    reason = guards.automatic_reason(mail, OWN, "mailtriage")
    path = received.delivery_path(mail)
    assert [hop.raw for hop in path] == list(reversed(received.received_headers(mail)))
    guards.is_out_of_office(mail)
    if guards.is_bounce(mail):
        report = bounces.read(raw, mail)
        assert all(MESSAGE_ID.fullmatch(mid) for mid in report.original_ids)
    tag = thread.find_tag(mail.subject, "MT")
    subject = thread.display_subject(mail.subject, "MT")
    assert subject and not CONTROL.search(subject)
    thread.decide(thread.ThreadFacts(tagged_ticket=tag, sender_may_use_tag=tag is not None,
                                     referenced_tickets=(1,) if mail.in_reply_to else ()))
    _check_trimming(mail.body_text, mail.subject)
    verdict = classify(mail, rules)
    assert all(hit.rule in verdict.matched_rules for hit in verdict.hits)
    _check_acknowledgement(mail, subject)
    if breach is not None:
        return breach.reason
    return reason or "human"


def _check_trimming(body: str, subject: str) -> None:
    """The author's words are lines of the body, the signature follows them."""
    lines = {line.rstrip() for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n")}
    for reply in (quotes.split_reply(body), quotes.split_keeping_forwards(body, subject)):
        assert reply.with_signature.startswith(reply.text) and reply.with_signature.endswith(reply.signature)
        assert {line.rstrip() for line in reply.with_signature.split("\n")} <= lines | {""}


def _check_acknowledgement(mail, subject: str) -> None:  # type: ignore[no-untyped-def]
    """Whatever the sender wrote, our reply has our headers, each once, and no other."""
    to = next((a for a in mail.reply_to + (mail.from_addr,) if a), None)
    if to is None or not deliverable(to):          # the workflow does not answer those
        return
    data = compose(Outgoing(from_addr="support@example.test", from_name=mail.from_name or "Support",
                            to=(to,), subject=f"[MT-1] {subject}", body=mail.body_text[:1000],
                            in_reply_to=mail.message_id, references=mail.references + (mail.message_id,),
                            loop_id="mailtriage"),
                   mail.date or _EPOCH, "<mt.fuzz@example.test>")
    head = data.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t")]
    assert set(names) <= _OUR_HEADERS and len(names) == len(set(names)), names


_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
_OUR_HEADERS = {b"from", b"to", b"subject", b"date", b"message-id", b"in-reply-to", b"references",
                b"auto-submitted", b"x-auto-response-suppress", b"x-loop", b"content-type",
                b"content-transfer-encoding", b"mime-version"}
