"""compose: whatever customer text it is given, the mail has our headers,
each once, and no other (CR/LF, Unicode line breaks, RFC 2047 decoded by the
email package's header registry)."""

from __future__ import annotations

import base64
import email
import email.policy
from datetime import datetime, timezone

import pytest

from mailtriage.errors import HeaderInjection
from mailtriage.notify.compose import Outgoing, compose, deliverable

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
SMUGGLED = "=?utf-8?b?" + base64.b64encode(b"\r\nBcc: victim@evil.example").decode() + "?="


def mail(**changes: object) -> Outgoing:
    values: dict = dict(from_addr="support@example.test", from_name="Support", to=("anna@customer.example",),
                        subject="[MT-1] Printer", body="Hello", in_reply_to="<a-1@customer.example>",
                        references=("<a-1@customer.example>",), loop_id="mailtriage")
    values.update(changes)
    return Outgoing(**values)


def header_names(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    return [line.split(b":", 1)[0].decode().lower() for line in head if line[:1] not in (b" ", b"\t")]


@pytest.mark.parametrize("changes", [
    {"subject": f"[MT-1] {SMUGGLED}"},
    {"subject": "[MT-1] a\r\nBcc: victim@evil.example"},
    {"subject": "[MT-1] a\u2028Bcc: victim@evil.example\x85X-Injected: 1"},
    {"from_name": SMUGGLED},
    {"from_name": 'Support"\r\nBcc: victim@evil.example'},
    {"in_reply_to": f"<{SMUGGLED}@customer.example>"},
    {"references": (f"<{SMUGGLED}@customer.example>", "<a-1@customer.example>")},
    {"loop_id": f"mailtriage {SMUGGLED}"},
])
def test_customer_text_never_becomes_a_header(changes: dict) -> None:
    data = compose(mail(**changes), T0, "<mt.1@example.test>")
    names = header_names(data)
    assert "bcc" not in names and "x-injected" not in names and len(names) == len(set(names))
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Bcc"] is None and "\n" not in str(parsed["Subject"])


def test_unusable_customer_ids_are_left_out_and_ours_must_be_right() -> None:
    data = compose(mail(in_reply_to=f"<{SMUGGLED}@x>", references=(f"<{SMUGGLED}@x>",)), T0, "<mt.1@example.test>")
    assert "in-reply-to" not in header_names(data) and "references" not in header_names(data)
    with pytest.raises(HeaderInjection):
        compose(mail(), T0, f"<{SMUGGLED}@example.test>")


@pytest.mark.parametrize("address", [f"{SMUGGLED}@x.example", "anna@\u0107eply.example", "jörg@example.test",
                                     "a b@x.example", "anna@x.example\r\nBcc: y@z", "", "@x.example"])
def test_only_plain_addresses_are_written(address: str) -> None:
    assert not deliverable(address)
    with pytest.raises(HeaderInjection):
        compose(mail(to=(address,)), T0, "<mt.1@example.test>")


def test_plain_addresses_are_deliverable() -> None:
    assert deliverable("anna.b+tag@customer.example") and deliverable("o'brien@x.example")


@pytest.mark.parametrize("body", ["Hallo Jürgen, die Größe passt.", "Здравствуйте, всё работает.",
                                  "A long line " * 20 + "é"])
def test_bodies_are_seven_bit_on_the_wire(body: str) -> None:
    """Without BODY=8BITMIME a relay may not be given 8-bit data (RFC 6152): none is written."""
    data = compose(mail(body=body, from_name="Jürgen's Support"), T0, "<m-1@example.test>")
    assert data.isascii()
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed.get_content().rstrip("\r\n") == body
    assert parsed["From"].addresses[0].display_name == "Jürgen's Support"


def test_to_and_cc_keep_the_names_we_know_and_names_cannot_add_headers() -> None:
    names = (("anna@customer.example", "Jansen, Pieter"),
             ("bob@customer.example", f"Bob\r\nBcc: x@evil.example {SMUGGLED}"))
    data = compose(mail(cc=("bob@customer.example", "dan@customer.example"), names=names), T0, "<m-1@example.test>")
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    [anna] = parsed["To"].addresses
    assert (anna.display_name, anna.addr_spec) == ("Jansen, Pieter", "anna@customer.example")
    bob, dan = parsed["Cc"].addresses
    assert bob.addr_spec == "bob@customer.example" and (dan.display_name, dan.addr_spec) == ("", "dan@customer.example")
    assert parsed["Bcc"] is None and "bcc" not in header_names(data)
