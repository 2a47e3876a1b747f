"""Mail is composed here and nowhere else.

One function sets Message-ID, In-Reply-To/References, the `[MT-n]` tag,
Auto-Submitted and X-Loop, and refuses CR/LF (and every other control
character) in header values, so customer text can never add a header.

The email package's header registry decodes RFC 2047 encoded words in the
values it is given, and Pythons before 3.11.10 write a CR/LF decoded that
way as a line break (CVE-2024-6923): a subject whose text is the literal
`=?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?=` became a `Bcc:` header. So text
values have their `=?` defused, addresses and Message-IDs with `=?` are
refused, and the composed header block is checked to hold exactly the
headers set here, once each.

Bodies are 7-bit on the wire: the SMTP policy would write UTF-8 text as
`Content-Transfer-Encoding: 8bit`, which a relay may only be given with
`MAIL FROM … BODY=8BITMIME` after it offered 8BITMIME (RFC 6152), and the
sender passed no such option. Quoted-printable (mostly-Latin text) or base64
(Cyrillic, Greek …) needs no extension and reaches every relay intact.

Attachments (`Enclosure`) are added with email.message's own API
(`add_attachment`, `add_related`), never by writing headers as text: a file
name is customer input, written as an RFC 2231 parameter by the header
registry, its controls and `=?` defused first. The bytes go base64 and come
out byte-identical. An HTML part with inline images (`html` + enclosures
that have a `content_id`) travels as multipart/related after the text, so
its `cid:` links still find their images.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import format_datetime

from mailtriage.errors import HeaderInjection

_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")     # str.splitlines() breaks on all of them


class _Registry(HeaderRegistry):
    """The stdlib's registry, made cheaper twice over (composing a notice was
    most of an SLA sweep's time, bench/sla_sweep.py):

    - each header's class is made once (the stdlib builds one with type() for
      every header set);
    - a value of a shape the registry writes back unchanged (_VERBATIM: plain
      ASCII text, a dot-atom Message-ID or address list, a `Name <address>`,
      a Date, a text body's Content-Type, Content-Transfer-Encoding and
      MIME-Version) that fits on one line is kept as given, not parsed into a tree
      and folded again. tests/unit/test_compose_headers.py checks each shape
      against the stdlib's registry, byte for byte. Anything else, and every
      value with `=?` or a character outside printable ASCII, goes the
      stdlib's way."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(key)
        return made

    def __call__(self, name: str, value: Any) -> Any:
        if _kept(name, value):
            return _Verbatim(name, value)
        return super().__call__(name, value)


class _Verbatim(str):
    """A header value written as given (see _Registry)."""

    name: str
    defects: tuple[Exception, ...] = ()

    def __new__(cls, name: str, value: str) -> "_Verbatim":
        header = super().__new__(cls, value)
        header.name = name
        return header

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_TEXT = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")          # unstructured: printable ASCII, single spaces
_VERBATIM: dict[str, re.Pattern[str]] = {
    **dict.fromkeys(("subject", "x-loop", "auto-submitted", "x-auto-response-suppress", "in-reply-to",
                     "references"), _TEXT),
    "message-id": re.compile(rf"<{_ADDR}>"),
    **dict.fromkeys(("to", "cc", "reply-to"), re.compile(rf"{_ADDR}(?:, {_ADDR})*")),
    "from": re.compile(rf"[A-Za-z0-9]+(?: [A-Za-z0-9]+)* <{_ADDR}>"),
    "date": re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                       r"\d{4} \d\d:\d\d:\d\d [+-]\d{4}"),
    # What set_content writes for a text body: the type (then again with its charset), the encoding, the version.
    "content-type": re.compile(r'text/(?:plain|html)(?:; charset="utf-8")?'),
    "content-transfer-encoding": re.compile(r"7bit|quoted-printable|base64"),
    "mime-version": re.compile(r"1\.0"),
}
_POLICY_LINE = 78                 # the policy's max_line_length: a longer line is folded


def _kept(name: str, value: Any) -> bool:
    """Does the registry keep this value as given (a _VERBATIM shape on one line)?"""
    shape = _VERBATIM.get(name.lower())
    return (shape is not None and isinstance(value, str) and len(name) + 2 + len(value) <= _POLICY_LINE
            and "=?" not in value and shape.fullmatch(value) is not None)


_POLICY = SMTP.clone(cte_type="7bit", header_factory=_Registry())   # docstring: no 8BITMIME needed
_TOKEN = re.compile(r"[a-z0-9!#$&^_.+-]+")     # a MIME type's halves
_PLAIN_NAME = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:\\\[\]]+@[^@\s<>\"(),;:\\\[\]]+$")


@dataclass(frozen=True)
class Outgoing:
    """Everything an outgoing mail needs; composed into bytes by `compose()`."""

    from_addr: str
    from_name: str
    to: tuple[str, ...]
    subject: str
    body: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    auto_submitted: str | None = "auto-replied"    # or auto-generated, or None for human mail
    loop_id: str | None = None
    cc: tuple[str, ...] = ()
    reply_to: str | None = None
    names: tuple[tuple[str, str], ...] = ()       # (address, display name) of To/Cc recipients we know by name
    attachments: tuple["Enclosure", ...] = ()     # after the text; those with a content_id go with `html`
    html: str | None = None                       # shown after the text, with its inline images (cid:)


@dataclass(frozen=True)
class Enclosure:
    """A file that travels with an outgoing mail, byte for byte."""

    filename: str
    content_type: str             # type/subtype, as parse.py checked it
    data: bytes = field(repr=False)
    content_id: str | None = None  # `<id@host>` that an HTML part's cid: link names


@dataclass(frozen=True)
class OutgoingMail:
    """One mail a ticket change sends, as the outbox will store it."""

    kind: str                     # acknowledgement, agent-notice, agent-reply, command-error, …
    mail: Outgoing
    message_id: str


def one_line(value: str) -> str:
    """Collapse any control character (CR, LF, NUL, TAB …) to one space, and
    defuse encoded-word syntax (a zero-width space after `=`), which the
    header registry would otherwise decode."""
    return _CONTROL.sub(" ", value).replace("=?", "=\u200b?").strip()


def deliverable(address: str) -> bool:
    """Can mail go to this address? A plain ASCII addr-spec: without SMTPUTF8
    a non-ASCII address cannot be written into a header or an envelope (the
    header registry folds it into a broken line), and `=?` would be decoded."""
    return bool(_ADDRESS.match(address or "")) and address.isascii() and "=?" not in address


def checked_address(value: str) -> str:
    if not deliverable(value):
        raise HeaderInjection(f"not a plain address: {value!r}")
    return value


def new_message_id(domain: str) -> str:
    return f"<mt.{uuid.uuid4().hex}@{domain}>"


def compose(mail: Outgoing, now: datetime, message_id: str) -> bytes:
    headers = _headers(mail, now, message_id)
    data = _plain(mail, headers)
    if data is not None:
        names = [name for name, _ in headers] + list(_TEXT_PART)
    else:
        msg = EmailMessage(policy=_POLICY)
        for name, value in headers:
            msg[name] = value
        msg.set_content(mail.body, charset="utf-8")
        _enclose(msg, mail)
        data, names = msg.as_bytes(), msg.keys()
    _check_header_block(data, names)
    return data


_Header = tuple[str, str | Address | tuple[Address, ...]]      # a name, and a value for the registry


def _headers(mail: Outgoing, now: datetime, message_id: str) -> list[_Header]:
    """The headers compose sets, in order, each value checked or made one line."""
    local, _, domain = checked_address(mail.from_addr).partition("@")
    headers: list[_Header] = [
        ("From", _sender(one_line(mail.from_name), local, domain)), ("To", _recipients(mail.to, mail.names))]
    if mail.cc:
        headers.append(("Cc", _recipients(mail.cc, mail.names)))
    if mail.reply_to:
        headers.append(("Reply-To", checked_address(mail.reply_to)))
    headers += [("Subject", one_line(mail.subject)), ("Date", _date(now, now.utcoffset())),
                ("Message-ID", _msgid(message_id))]
    # The customer's ids only thread the conversation: an unusable one is left out.
    if mail.in_reply_to and _usable_msgid(mail.in_reply_to):
        headers.append(("In-Reply-To", mail.in_reply_to))
    refs = [r for r in mail.references if _usable_msgid(r)]
    if refs:
        headers.append(("References", " ".join(refs[-20:])))     # keep the header a sane size
    if mail.auto_submitted:
        headers.append(("Auto-Submitted", mail.auto_submitted))
        headers.append(("X-Auto-Response-Suppress", "All"))       # asks Outlook not to answer us
    if mail.loop_id:
        headers.append(("X-Loop", one_line(mail.loop_id)))
    return headers


# What set_content adds after the headers set, for a text body sent as it is.
_TEXT_PART = {"Content-Type": 'text/plain; charset="utf-8"', "Content-Transfer-Encoding": "7bit",
              "MIME-Version": "1.0"}


def _plain(mail: Outgoing, headers: list[_Header]) -> bytes | None:
    """The bytes the email package writes, without it, for the common mail (an
    SLA notice, an acknowledgement in English): text only, every header one the
    registry keeps as given, a body of ASCII lines of at most 78 characters
    (set_content's heuristics choose 7bit for it and leave it as it is).
    None for every other mail, and under any other policy (the tests compare
    with the stdlib's). tests/unit/test_compose_headers.py checks it byte for byte."""
    if mail.html or mail.attachments or not isinstance(_POLICY.header_factory, _Registry):
        return None
    if not all(_kept(name, value) for name, value in headers):
        return None
    try:
        lines = mail.body.encode("ascii").splitlines()
    except UnicodeEncodeError:
        return None
    if any(len(line) > _POLICY_LINE for line in lines):
        return None
    head = "".join(f"{name}: {value}\r\n" for name, value in [*headers, *_TEXT_PART.items()]).encode("ascii")
    return head + b"\r\n" + (b"".join(line + b"\r\n" for line in lines) or b"\r\n")    # empty: one line


def _enclose(msg: EmailMessage, mail: Outgoing) -> None:
    """The HTML part with its inline images, then the attachments (multipart/mixed)."""
    inline = [e for e in mail.attachments if e.content_id and _usable_msgid(e.content_id)] if mail.html else []
    files = [e for e in mail.attachments if e not in inline]
    if not inline and not files and not mail.html:
        return
    msg.make_mixed()
    if mail.html:
        related = EmailMessage(policy=_POLICY)
        related.set_content(mail.html, subtype="html", charset="utf-8", disposition="inline")
        for enclosure in inline:
            maintype, subtype = _type(enclosure)
            related.add_related(enclosure.data, maintype=maintype, subtype=subtype, cid=enclosure.content_id,
                                disposition="inline", filename=one_line(enclosure.filename) or "unnamed")
        msg.attach(related)
    for enclosure in files:
        maintype, subtype = _type(enclosure)
        msg.add_attachment(enclosure.data, maintype=maintype, subtype=subtype,
                           filename=one_line(enclosure.filename) or "unnamed")


def _type(enclosure: Enclosure) -> tuple[str, str]:
    """Its type; an enclosed message or multipart goes as plain bytes (application/octet-stream):
    base64 is not allowed on those types, and bytes are what must arrive."""
    maintype, _, subtype = enclosure.content_type.lower().partition("/")
    if maintype in ("message", "multipart") or not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)):
        return "application", "octet-stream"
    return maintype, subtype


def _sender(name: str, local: str, domain: str) -> str | Address:
    """`Name <address>` as text when the name is plain words (what Address would
    write, and the registry keeps it as given); else an Address, which quotes."""
    return f"{name} <{local}@{domain}>" if _PLAIN_NAME.fullmatch(name) else Address(name, local, domain)


def _recipients(addresses: tuple[str, ...], names: tuple[tuple[str, str], ...]) -> str | tuple[Address, ...]:
    """To/Cc with the display names we know (a person's client shows them, and
    files the mail under them); the header registry quotes `Jansen, Pieter`."""
    known = {address.lower(): name for address, name in names}
    if not any(known.get(a.lower()) for a in addresses):
        return ", ".join(checked_address(a) for a in addresses)
    found = []
    for address in addresses:
        local, _, domain = checked_address(address).partition("@")
        found.append(Address(one_line(known.get(address.lower(), "")), local, domain))
    return tuple(found)


def _usable_msgid(value: str) -> bool:
    return bool(_MSGID.fullmatch(value)) and "=?" not in value


_MSGID = re.compile(r"<[^<>\s]+>")


@lru_cache(maxsize=8)
def _date(now: datetime, offset: timedelta | None) -> str:
    """The Date: header, once per instant and offset (a sweep's notices share their `now`)."""
    return format_datetime(now)


def _msgid(value: str) -> str:
    if not _usable_msgid(value):
        raise HeaderInjection(f"not a Message-ID: {value!r}")
    return value


def _check_header_block(data: bytes, names: list[str]) -> None:
    """The headers written are exactly the ones set: a value that turned into
    a line of its own is refused, whatever let it through."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    written = sorted(line.split(b":", 1)[0].strip().lower() for line in head if line[:1] not in (b" ", b"\t"))
    if written != sorted(name.lower().encode("ascii") for name in names):
        raise HeaderInjection(f"the composed headers are not the ones set: {written!r}")
