"""Hostile input through the whole pipeline, each bounded in time and memory.

Huge, wide and deep MIME, binary junk, a regex that backtracks
catastrophically, CR/LF smuggled through an encoded subject, Jinja syntax in
customer text. Every message is stored byte for byte first; what happens
next is asserted. The ping-pong with an auto-responder is in test_hygiene.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import random
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from helpers import bare, bounded, eml, make_site, site_app
from mailtriage import pipeline
from mailtriage.store.schema import OutboxRow, RawMessage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
NOW = T0.isoformat()


@pytest.fixture
def lite(tmp_path):  # type: ignore[no-untyped-def]
    """A site on SQLite only: these tests are about input, not about the database."""
    return make_site(tmp_path / "site")


def stored(app, raw_id: int) -> RawMessage:  # type: ignore[no-untyped-def]
    with app.store.session() as session:
        row = session.get(RawMessage, raw_id)
        assert row is not None
        return row


def ack_of(app) -> email.message.EmailMessage:  # type: ignore[no-untyped-def]
    with app.store.session() as session:
        [row] = session.scalars(select(OutboxRow).where(OutboxRow.kind == "acknowledgement"))
        return email.message_from_bytes(row.data, policy=email.policy.default)


def with_limits(site, **limits: object) -> None:  # type: ignore[no-untyped-def]
    site.config.write_text(site.config.read_text() + "\nlimits: " + json.dumps(limits) + "\n")


def many_parts(count: int) -> bytes:
    parts = "".join(f"--sep\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(count))
    return ("From: carla@customer.example\r\nSubject: parts\r\nMessage-ID: <parts@customer.example>\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="sep"\r\n\r\n'
            + parts + "--sep--\r\n").encode()


def nested(depth: int) -> bytes:
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth))
    closing = "".join(f"--b{i}--\r\n" for i in reversed(range(depth)))
    return ("From: carla@customer.example\r\nSubject: deep\r\nMessage-ID: <deep@customer.example>\r\n"
            "MIME-Version: 1.0\r\n" + opening + "Content-Type: text/plain\r\n\r\ninnermost\r\n" + closing).encode()


def test_a_30_mb_message_is_kept_raw_and_quarantined_without_parsing(site):
    app = site_app(site, T0)
    raw = eml("Huge", "x" * 99 + "\r\n") + b"y" * (30 * 2**20)
    with bounded(seconds=20, megabytes=70):              # the bytes and a copy, never a parse tree
        outcome = pipeline.process(app, raw, T0)
    assert outcome.action == "quarantined:limit:size"
    row = stored(app, outcome.raw_id)
    assert row.data == raw and row.size == len(raw) and "max_message_size" in (row.error or "")


def test_five_thousand_parts(lite):
    app = site_app(lite, T0)
    raw = many_parts(5000)
    with bounded(seconds=5, megabytes=20):               # the scan stops at part 1001
        outcome = pipeline.process(app, raw, T0)
    assert outcome.action == "quarantined:limit:parts"
    assert stored(app, outcome.raw_id).data == raw

    with_limits(lite, max_parts=10_000)                   # allowed: the parse copes too
    app = site_app(lite, T0)
    with bounded(seconds=20, megabytes=None):
        outcome = pipeline.process_stored(app, outcome.raw_id, T0)
    assert outcome.action == "new"


def test_multipart_nested_200_deep(lite):
    app = site_app(lite, T0)
    raw = nested(200)
    with bounded(seconds=5, megabytes=20):
        outcome = pipeline.process(app, raw, T0)
    assert outcome.action == "quarantined:limit:depth"
    assert stored(app, outcome.raw_id).data == raw

    with_limits(lite, max_depth=1000)                     # allowed: parse() copes (recursion-safe)
    app = site_app(lite, T0)
    with bounded(seconds=20, megabytes=None):
        outcome = pipeline.process_stored(app, outcome.raw_id, T0)
    assert outcome.action == "new"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_junk_with_nul_bytes(lite, seed: int):
    app = site_app(lite, T0)
    junk = random.Random(seed).randbytes(192 * 1024)
    junk = junk.replace(b"\n", b"\x00\n")[: 192 * 1024]   # NULs everywhere, also at line starts
    with bounded(seconds=10, megabytes=100):
        outcome = pipeline.process(app, junk, T0)
    assert not outcome.action.startswith("quarantined"), outcome
    assert stored(app, outcome.raw_id).data == junk


def test_nul_bytes_in_headers_and_body_stay_data(lite):
    app = site_app(lite, T0)
    raw = (b"From: Carla\x00 <carla@customer.example>\r\nSubject: Print\x00er\x00\r\n"
           b"Message-ID: <nul@customer.example>\r\n\r\nIt\x00 does not print.\x00\r\n")
    assert pipeline.process(app, raw, T0).action == "new"
    ticket = lite.ticket("MT-1")
    assert "\x00" not in json.dumps(ticket) and "\\u0000" not in json.dumps(ticket)
    assert stored(app, 1).data == raw


def test_a_regex_that_backtracks_catastrophically_runs_in_linear_time(lite):
    (lite.dir / "rules.yaml").write_text(
        "rules:\n"
        "  - name: runaway\n"
        "    when: {body: [{regex: '(a+)+$'}]}\n"             # exponential in a backtracking engine
        "    set: {tags: [never]}\n"
        "  - name: bang\n"
        "    when: {subject_or_body: [{regex: '^(a|aa)+!'}]}\n"
        "    set: {severity: S2, tags: [bang]}\n"
        "default: {severity: S4, tier: L1, queue: support}\n")
    app = site_app(lite, T0)
    raw = eml("a" * 10_000 + "!", "a" * 90_000 + "!", message_id="<redos@customer.example>")   # < max_scan_chars
    with bounded(seconds=5, megabytes=100):
        outcome = pipeline.process(app, raw, T0)
    assert outcome.action == "new"
    ticket = lite.ticket("MT-1")
    assert ticket["tags"] == ["bang"] and ticket["severity"] == "S2"
    path = lite.write("redos.eml", "")
    path.write_bytes(raw)
    with bounded(seconds=5, megabytes=100):
        code, out, err = lite.cli("rules", "test", str(path), "--json")
    assert code == 0, err


@pytest.mark.parametrize("subject", [
    "=?utf-8?b?" + base64.b64encode(b"Printer\r\nBcc: victim@evil.example\r\nX-Injected: yes").decode() + "?=",
    "=?utf-8?q?Printer=0D=0ABcc:_victim@evil.example=0D=0AX-Injected:_yes?=",
    "=?iso-8859-1?q?Printer=0ABcc:_victim@evil.example?= =?utf-8?b?" + base64.b64encode(b"\rX-Injected: yes").decode() + "?=",
    # Encoded twice: parse decodes once, and the email package's header registry
    # would decode the rest into a real CR/LF (CVE-2024-6923) without compose's guard.
    "=?utf-8?b?" + base64.b64encode(b"Printer =?utf-8?b?" + base64.b64encode(b"\r\nBcc: victim@evil.example\r\n"
                                                                           b"X-Injected: yes") + b"?=").decode() + "?=",
    "Printer \u2028Bcc: victim@evil.example\u2029X-Injected: yes",
])
def test_cr_lf_smuggled_through_an_encoded_subject_adds_no_header(lite, subject: str):
    app = site_app(lite, T0)
    smuggled_id = "<=?utf-8?b?" + base64.b64encode(b"\r\nBcc: victim@evil.example").decode() + "?=@customer.example>"
    raw = eml(subject, sender="=?utf-8?q?Carla=0D=0ABcc:_x@evil.example?= <carla@customer.example>",
              message_id="<crlf@customer.example>", references=smuggled_id)
    with bounded(seconds=5, megabytes=50):
        assert pipeline.process(app, raw, T0).action == "new"
    with app.store.session() as session:
        data = session.scalars(select(OutboxRow.data)).one()
    lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    names = [line.split(b":", 1)[0].lower() for line in lines if line[:1] not in (b" ", b"\t")]
    assert b"bcc" not in names and b"x-injected" not in names
    ack = ack_of(app)
    assert ack["Bcc"] is None and ack["X-Injected"] is None
    assert bare(ack["To"]) == "carla@customer.example"
    assert "\n" not in ack["To"].addresses[0].display_name           # the smuggled name, one harmless line
    assert "[MT-1]" in ack["Subject"] and "Printer" in ack["Subject"] and "\n" not in ack["Subject"]
    [ticket] = lite.tickets()
    assert "\r" not in ticket["subject"] and "\n" not in ticket["subject"]


def test_jinja_syntax_in_subject_and_body_is_only_text(lite):
    app = site_app(lite, T0)
    subject = "{{ 7*7 }} {% for i in range(10**9) %}x{% endfor %} {{ ticket.__class__.__mro__ }}"
    body = "{{ config }} {% include '/etc/passwd' %} {{ ''.__class__.__mro__[1].__subclasses__() }}"
    with bounded(seconds=5, megabytes=50):
        outcome = pipeline.process(app, eml(subject, body, sender="{{7*7}} <carla@customer.example>",
                                            message_id="<jinja@customer.example>"), T0)
    assert outcome.action == "new"
    ack = ack_of(app)
    assert "{{ 7*7 }}" in ack["Subject"] and "{% for i in range(10**9) %}" in ack["Subject"]
    text = ack.get_content()
    assert "{{ 7*7 }}" in text and "49" not in ack["Subject"] and "root:" not in text
    assert lite.ticket("MT-1")["messages"][0]["body_text"].strip() == body


def test_passwords_are_never_read_from_the_yaml(lite):
    text = lite.config.read_text()
    lite.config.write_text(text.replace("    from_name: Example Support\n",
                                        "    from_name: Example Support\n"
                                        "    imap: {host: h, username: u, password: hunter2}\n"))
    code, out, err = lite.cli("config", "check")
    assert code == 2 and "password" in (out + err) and "hunter2" not in (out + err)
