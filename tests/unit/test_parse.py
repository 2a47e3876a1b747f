"""parse(): raw bytes in, a ParsedMail out, never an exception.

Inputs are real message bytes: small fixtures in tests/fixtures/mail/ and
messages written inline where one header is the point of the test.
"""

from __future__ import annotations

import hashlib
import random
import re
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtriage.mail.parse import parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def message(*headers: str, body: str = "Hello.\n") -> bytes:
    """A small message: header lines as given, then the body."""
    return ("\n".join(headers) + "\n\n" + body).encode("utf-8")


def assert_single_line_headers(mail) -> None:
    for name, value in mail.headers:
        assert not CONTROL.search(name + value), (name, value)
    assert not CONTROL.search(mail.subject + mail.from_name)


# -- subjects and other decoded headers ------------------------------------

@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ("=?utf-8?q?Dr=C3=BCcker_kaputt?=", "Drücker kaputt"),
        ("=?UTF-8?B?0J/RgNC40L3RgtC10YAg8J+WqA==?=", "Принтер 🖨"),
        ("=?koi8-r?B?8NLJ18XULCDNydI=?=", "Привет, мир"),
        ("=?iso-8859-1?q?Gr=FC=DFe_aus_K=F6ln?=", "Grüße aus Köln"),
        ("=?ISO-8859-1*de?Q?Gr=FC=DFe?=", "Grüße"),            # RFC 2231 language tag
        ("Re: =?utf-8?q?caf=C3=A9?= =?utf-8?q?_au_lait?=", "Re: café au lait"),
        ("=?utf-8?b?4oI=?= =?utf-8?b?rA==?= 10", "€ 10"),       # one character split over two words
        ("=?x-unknown?q?caf=C3=A9?=", "café"),                  # unknown name, utf-8 bytes
        ("plain =?utf-8?q?and?=\n\tfolded", "plain and folded"),
    ],
)
def test_encoded_subjects_are_decoded(encoded: str, expected: str) -> None:
    mail = parse(message(f"Subject: {encoded}", "Message-ID: <s@x>"))
    assert mail.subject == expected


def test_unknown_charset_survives_with_a_defect() -> None:
    mail = parse(message("Subject: =?x-no-such-charset?q?caf=E9_cr=E8me?="))
    assert mail.subject.startswith("caf")
    assert mail.subject.endswith("me")
    assert "charset-fallback:x-no-such-charset" in mail.defects


def test_raw_utf8_subject_without_encoding() -> None:
    mail = parse("Subject: Größe übermäßig\n\nbody\n".encode("utf-8"))
    assert mail.subject == "Größe übermäßig"


@pytest.mark.parametrize(
    "header",
    [
        "Subject: =?utf-8?q?hi=0D=0ABcc:_evil@x?=",
        "Subject: =?utf-8?b?aGkNCkJjYzogZXZpbEB4?=",
        "Subject: hi =?utf-8?q?=00=1B[31m?= there",
        "From: =?utf-8?q?Eve=0D=0ABcc:_all@x?= <eve@x.example>",
    ],
)
def test_cr_lf_nul_smuggled_in_encoded_words_do_not_survive(header: str) -> None:
    mail = parse(message(header))
    assert_single_line_headers(mail)
    assert "Bcc" not in "".join(mail.recipients)


def test_crlf_smuggling_keeps_the_text() -> None:
    mail = parse(message("Subject: =?utf-8?q?hi=0D=0ABcc:_evil@x?="))
    assert mail.subject == "hi Bcc: evil@x"
    assert mail.header("subject") == "hi Bcc: evil@x"


# -- addresses ---------------------------------------------------------------

def test_addresses_from_a_mutt_reply() -> None:
    mail = parse(fixture("mutt-koi8r-reply.eml"))
    assert mail.from_addr == "ivan.petrov@example.ru"
    assert mail.from_name == "Иван Петров"
    assert mail.to == ("support@helpdesk.example",)
    assert mail.cc == ("anna@customer.example", "john@customer.example")
    assert mail.reply_to == ()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("To: undisclosed-recipients:;", ()),
        ("To: ((((((((((((((((((((" * 60, ()),
        ("To: <<<<<<<>>>>,,,,;;;:::", ()),
        ("To: Anna <ANNA@X.example>, bob@y.example (Bob), \"Doe, J\" <j@z.example>",
         ("anna@x.example", "bob@y.example", "j@z.example")),
        ("To: " + ", ".join(f"u{i}@x.example" for i in range(3000)), None),
    ],
)
def test_garbage_and_large_address_headers(header: str, expected: tuple[str, ...] | None) -> None:
    mail = parse(message(header))
    if expected is None:
        assert len(mail.to) == 3000 and mail.to[-1] == "u2999@x.example"
    else:
        assert mail.to == expected


# -- ids and dates -----------------------------------------------------------

def test_missing_message_id_is_synthesized_deterministically() -> None:
    raw = message("From: a@b.example", "Subject: no id")
    first, second = parse(raw), parse(raw)
    expected = f"<{hashlib.sha256(raw).hexdigest()[:32]}@mailtriage.invalid>"
    assert first.message_id == second.message_id == expected
    assert first.message_id_synthesized
    assert parse(raw + b"more\n").message_id != expected


@pytest.mark.parametrize(
    ("header", "expected", "synthesized"),
    [
        ("Message-ID: <abc@host.example>", "<abc@host.example>", False),
        ("Message-ID:   <abc@host.example>   ", "<abc@host.example>", False),
        ("Message-ID:\n <folded@host.example>", "<folded@host.example>", False),
        ("Message-Id: bare@host.example", "<bare@host.example>", False),
        ("Message-ID: <>", None, True),
        ("Message-ID: not an id", None, True),
    ],
)
def test_message_id(header: str, expected: str | None, synthesized: bool) -> None:
    mail = parse(message(header))
    assert mail.message_id_synthesized is synthesized
    if expected:
        assert mail.message_id == expected
    else:
        assert mail.message_id.endswith("@mailtriage.invalid>")


def test_folded_references_keep_their_order() -> None:
    mail = parse(fixture("mutt-koi8r-reply.eml"))
    assert mail.in_reply_to == ("<ticket-42.1715600000@helpdesk.example>",)
    assert mail.references == (
        "<first.1715000000@customer.example>",
        "<second.1715100000@helpdesk.example>",
        "<ticket-42.1715600000@helpdesk.example>",
    )


def test_dates_are_timezone_aware_or_none() -> None:
    mail = parse(fixture("mutt-koi8r-reply.eml"))
    assert mail.date is not None and mail.date.utcoffset() == timedelta(hours=3)
    unknown_zone = parse(message("Date: Tue, 14 May 2024 09:12:44 -0000"))
    assert unknown_zone.date is not None and unknown_zone.date.tzinfo == timezone.utc
    bad = parse(message("Date: the day after tomorrow"))
    assert bad.date is None and "bad-date" in bad.defects
    assert parse(message("Subject: no date")).date is None


# -- bodies ------------------------------------------------------------------

def test_plain_body_in_its_charset_with_crlf_normalized() -> None:
    mail = parse(fixture("mutt-koi8r-reply.eml"))
    assert mail.body_text == "Здравствуйте!\nПринтер снова не печатает.\n\n> Quoted text from the agent\n"


def test_crlf_and_lf_files_parse_alike() -> None:
    crlf = fixture("mutt-koi8r-reply.eml")
    with_crlf, with_lf = parse(crlf), parse(crlf.replace(b"\r\n", b"\n"))
    assert with_crlf.headers == with_lf.headers
    assert with_crlf.body_text == with_lf.body_text


def test_html_only_body_becomes_readable_text() -> None:
    body = parse(fixture("html-only.eml")).body_text
    assert "Grüße aus Köln," in body
    assert "the VPN is down." in body
    assert "vpn1" in body
    assert "<" not in body and "alert(1)" not in body and "color: red" not in body


def test_nested_divs_do_not_indent_the_text_and_lists_stay_indented() -> None:
    # A phone's answer (Gmail for iOS): every line in a <div>, the whole in two more.
    html = ('<div dir="auto"><div><div>Hello Carla,</div><div><br></div><div>please restart it.</div>'
            '<ul><li>first the router</li><li>then the laptop</li></ul><div>Alice</div></div></div>')
    body = parse(message("Content-Type: text/html; charset=utf-8", body=html)).body_text
    lines = [line for line in body.splitlines() if line.strip()]
    assert lines == ["Hello Carla,", "please restart it.", "  * first the router", "  * then the laptop", "Alice"]


def test_an_attribution_in_html_keeps_its_address_intact() -> None:
    html = '<div>On Mon, Alice <span>&lt;<a href="mailto:a@example.test">a@example.test</a>&gt;</span> wrote:</div>'
    body = parse(message("Content-Type: text/html; charset=utf-8", body=html)).body_text
    assert body.strip() == "On Mon, Alice <a@example.test> wrote:"


THUNDERBIRD = ("Hello Carla,\n\nthe printer in room 4 needs a new fuser unit; we have ordered one \n"
               "and it should arrive on Wednesday, when a technician will fit it. \n"
               "Until then please use the printer on the second floor.\n\n"
               "> Is it the toner? It smells like burnt paper and the display \n> shows E-103.\n\n"
               " >not a quote, space-stuffed\n\n-- \nAlice\n")


def test_format_flowed_is_unwrapped_into_paragraphs() -> None:
    raw = message("Content-Type: text/plain; charset=utf-8; format=flowed", body=THUNDERBIRD)
    assert parse(raw).body_text.splitlines() == [
        "Hello Carla,", "",
        "the printer in room 4 needs a new fuser unit; we have ordered one and it should arrive on "
        "Wednesday, when a technician will fit it. Until then please use the printer on the second floor.", "",
        "> Is it the toner? It smells like burnt paper and the display shows E-103.", "",
        ">not a quote, space-stuffed", "", "-- ", "Alice"]


def test_format_flowed_delsp_joins_without_the_space_and_fixed_text_is_left_alone() -> None:
    raw = message('Content-Type: text/plain; charset=utf-8; format="flowed"; delsp=yes',
                  body="Zusammen \ngeschrieben.\n")
    assert parse(raw).body_text.splitlines() == ["Zusammengeschrieben."]
    fixed = message("Content-Type: text/plain; charset=utf-8", body="trailing \nspace stays a line\n")
    assert parse(fixed).body_text.splitlines() == ["trailing ", "space stays a line"]


def test_plain_alternative_is_preferred_and_attachments_stay_out() -> None:
    mail = parse(fixture("attachments.eml"))
    assert mail.body_text == "Hello, the rates in the attached file look wrong – please check."
    assert "root:x" not in mail.body_text


def test_html_too_deep_for_lxml_still_gives_text() -> None:
    raw = b"Content-Type: text/html\n\n" + b"<div>" * 300 + b"Tom &amp; Jerry" + b"</div>" * 300
    mail = parse(raw)
    assert mail.body_text == "Tom & Jerry"
    assert "html-conversion-failed" in mail.defects


def test_forwarded_message_is_an_attachment_not_the_body() -> None:
    raw = message(
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b"',
        body="--b\nContent-Type: text/plain\n\nSee below.\n--b\nContent-Type: message/rfc822\n\n"
        "From: x@y.example\nSubject: original\n\noriginal text\n--b--\n",
    )
    mail = parse(raw)
    assert mail.body_text == "See below."
    (attachment,) = mail.attachments
    assert (attachment.filename, attachment.content_type) == ("message.eml", "message/rfc822")
    assert attachment.size > 0


def test_lying_charset_falls_back() -> None:
    raw = b"Content-Type: text/plain; charset=us-ascii\n\nGr\xc3\xbc\xc3\x9fe\n"
    mail = parse(raw)
    assert mail.body_text == "Grüße\n"
    assert "charset-fallback:us-ascii" in mail.defects


def test_windows_text_labelled_latin1_keeps_its_curly_quotes() -> None:
    mail = parse(b"Content-Type: text/plain; charset=ISO-8859-1\n\n\x93quoted\x94 caf\xe9\n")
    assert mail.body_text == "\u201cquoted\u201d caf\u00e9\n"


def test_escape_codecs_are_refused_as_charsets() -> None:
    raw = b"Content-Type: text/plain; charset=raw_unicode_escape\n\n\\ud800 hi\n"
    mail = parse(raw)
    mail.body_text.encode("utf-8")  # no lone surrogate came through
    assert "charset-fallback:raw_unicode_escape" in mail.defects


def test_nul_and_terminal_escapes_leave_the_body() -> None:
    mail = parse(b"Subject: x\n\nline\x00 one\x1b[2J\r\nline two\r\n")
    assert mail.body_text == "line one[2J\nline two\n"


# -- attachments -------------------------------------------------------------

def test_attachment_metadata() -> None:
    attachments = parse(fixture("attachments.eml")).attachments
    assert [(a.filename, a.content_type, a.size) for a in attachments] == [
        ("€ rates 2024.pdf", "application/pdf", 240),      # RFC 2231
        ("logo.png", "image/png", 264),                     # inline image with a filename
        ("passwd", "text/plain", 32),                       # ../../etc/passwd
        ("отчёт.xlsx", "application/octet-stream", 4),      # RFC 2231 continuations
        ("setup.exe", "application/x-msdownload", 2),       # RFC 2047 ..\..\Windows\setup.exe
    ]


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\Users\\\\x\\\\..\\\\evil.bat"', "evil.bat"),
        ('attachment; filename=".."', "unnamed"),
        ("attachment; filename*=utf-8''a%00b%2F..%2F..%2Fc.txt", "c.txt"),
        ("attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe", "invoicefdp.exe"),
        ('attachment; filename="report..final.pdf"', "report.final.pdf"),
        ("attachment", "unnamed"),
    ],
)
def test_filenames_are_made_safe(disposition: str, expected: str) -> None:
    raw = message(
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b"',
        body=f"--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: application/octet-stream\n"
        f"Content-Disposition: {disposition}\n\nx\n--b--\n",
    )
    (attachment,) = parse(raw).attachments
    assert attachment.filename == expected
    for forbidden in ("/", "\\", "..", "\x00", "\u202e"):
        assert forbidden not in attachment.filename


# -- hostile and broken input ------------------------------------------------

@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 1000,
        b"no headers at all, just a line\n",
        b"\n\n\n",
        bytes(random.Random(7).randrange(256) for _ in range(20_000)),
        b"\xff\xfe\x00S\x00u\x00b\x00j\x00:\x00 \x00x\x00\n\x00",
        b"From: \x00\x01\x02\nSubject: =?\x00?q?\x00?=\nContent-Type: multipart/mixed; boundary=\x00\n\n--\x00\n",
        b"Content-Type: multipart/mixed\n\nno boundary parameter\n",
        b"Content-Type: text/plain; charset*=x''%ff%fe\n\nbody\n",
    ],
)
def test_junk_does_not_raise(raw: bytes) -> None:
    mail = parse(raw)
    assert mail.message_id.startswith("<") and mail.message_id.endswith(">")
    assert_single_line_headers(mail)
    assert "\x00" not in mail.body_text


def test_five_thousand_parts() -> None:
    parts = "".join(f"--sep\nContent-Type: text/plain\n\npart {i}\n" for i in range(5000))
    raw = message("MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="sep"', body=parts + "--sep--\n")
    mail = parse(raw)
    assert mail.body_text.startswith("part 0\n")
    assert "part 4999" in mail.body_text


def nested(depth: int) -> bytes:
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    closing = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    return ("Subject: deep\nMIME-Version: 1.0\n" + opening
            + "Content-Type: text/plain\n\ninnermost\n" + closing).encode()


def test_two_hundred_levels_of_nesting() -> None:
    mail = parse(nested(200))
    assert mail.body_text == "innermost"
    assert mail.subject == "deep"


def test_nesting_beyond_the_stack_gives_headers_and_a_defect() -> None:
    mail = parse(nested(1000))
    assert mail.subject == "deep"
    assert "too-deep" in mail.defects


HEADERISH = st.sampled_from(
    [b"\n", b"\r\n", b"\x00", b": ", b"Subject", b"From", b"To", b"Content-Type", b"multipart/mixed",
     b"; boundary=", b"--", b"=?", b"?q?", b"?b?", b"?=", b"utf-8", b"<", b">", b"@", b"(", b'"',
     b"Content-Disposition: attachment; filename*=", b"''%2e%2e%2F", b"\xff", b"\xc3", b"\t"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(HEADERISH, st.binary(max_size=8)), max_size=60))
def test_any_bytes_parse_without_exception(chunks: list[bytes]) -> None:
    mail = parse(b"".join(chunks))
    assert mail.message_id
    assert not any(d.startswith("parse-error") for d in mail.defects)
    assert_single_line_headers(mail)
    for attachment in mail.attachments:
        assert attachment.filename and not {"/", "\\", "\x00"} & set(attachment.filename)
