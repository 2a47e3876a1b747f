"""Mail is composed here and nowhere else.

One function sets Message-ID, In-Reply-To/References, the `[MT-n]` tag,
Auto-Submitted and X-Loop, and refuses CR/LF (and every other control
character) in header values, so customer text can never add a header.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:\\\[\]]+@[^@\s<>\"(),;:\\\[\]]+$")


class HeaderInjection(ValueError):
    """A value that must be a single header line was not."""


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


def one_line(value: str) -> str:
    """Collapse any control character (CR, LF, NUL, TAB …) to one space."""
    return _CONTROL.sub(" ", value).strip()


def checked_address(value: str) -> str:
    if not _ADDRESS.match(value or ""):
        raise HeaderInjection(f"not a plain address: {value!r}")
    return value


def new_message_id(domain: str) -> str:
    return f"<mt.{uuid.uuid4().hex}@{domain}>"


def compose(mail: Outgoing, now: datetime, message_id: str) -> bytes:
    msg = EmailMessage(policy=SMTP)
    local, _, domain = checked_address(mail.from_addr).partition("@")
    msg["From"] = Address(one_line(mail.from_name), local, domain)
    msg["To"] = ", ".join(checked_address(a) for a in mail.to)
    if mail.cc:
        msg["Cc"] = ", ".join(checked_address(a) for a in mail.cc)
    if mail.reply_to:
        msg["Reply-To"] = checked_address(mail.reply_to)
    msg["Subject"] = one_line(mail.subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = _msgid(message_id)
    if mail.in_reply_to:
        msg["In-Reply-To"] = _msgid(mail.in_reply_to)
    refs = [_msgid(r) for r in mail.references]
    if refs:
        msg["References"] = " ".join(refs[-20:])     # keep the header a sane size
    if mail.auto_submitted:
        msg["Auto-Submitted"] = mail.auto_submitted
        msg["X-Auto-Response-Suppress"] = "All"       # asks Outlook not to answer us
    if mail.loop_id:
        msg["X-Loop"] = one_line(mail.loop_id)
    msg.set_content(mail.body, charset="utf-8")
    return msg.as_bytes()


def _msgid(value: str) -> str:
    if not re.fullmatch(r"<[^<>\s]+>", value):
        raise HeaderInjection(f"not a Message-ID: {value!r}")
    return value
