"""Bounces: which of our messages failed, and for whom. (pure)

    parse ─► guards.is_bounce ─► **bounces.read** ─► pipeline: a `bounce` event on
                                                     the ticket, hard bounces suppressed

A delivery failure report names the message it is about in one of several
places, and `read()` collects them, the most reliable first: the Message-ID
in the enclosed original (RFC 3464's message/rfc822 or text/rfc822-headers
part, RFC 6533's message/global and message/global-headers); a
`Message-ID:` line quoted in the report's text (qmail, Exim and many vendor
formats copy the original's headers inline); then the report's own
In-Reply-To and References (Exchange NDRs thread to the original). The
pipeline looks these up among our outbox rows: a bounce that refers to none
of our mail is backscatter and changes nothing.

The failed addresses come from flufl.bounce (Mailman's detectors for DSNs
and some twenty vendor formats), split into permanent (hard: stop mailing
them) and temporary (delayed: only noted). flufl.bounce's heuristics raise
on some ordinary messages and find "failures" in ordinary replies, so it
runs only on what `guards.is_bounce()` accepted, and a failure inside it
gives no addresses rather than losing the message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32

from flufl.bounce import all_failures

from mailtriage.mail.mime import subparts
from mailtriage.model import ParsedMail

# flufl.bounce logs every detector it runs (INFO) and a traceback for each one
# that raises on hostile input; neither is news for an operator.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

_ENCLOSED = ("message/rfc822", "message/global")
_ENCLOSED_HEADERS = ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers")
_QUOTED_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)
_MSG_ID = re.compile(r"<[^<>\s]{1,250}>")
_MAX_TEXT = 200_000          # quoted headers are near the top of a report's text
_MAX_PARTS = 200             # a report has a handful of parts; limits.py bounds the rest


@dataclass(frozen=True)
class Bounce:
    """What one delivery failure report says."""

    permanent: frozenset[str]           # lower-cased addresses that failed for good
    temporary: frozenset[str]           # delayed, may still arrive
    original_ids: tuple[str, ...]       # Message-IDs it is about, most reliable first

    @property
    def hard(self) -> bool:
        return bool(self.permanent)


def read(raw: bytes, mail: ParsedMail) -> Bounce:
    """The report's failed addresses and the Message-IDs it refers to."""
    try:
        msg = BytesParser(policy=compat32).parsebytes(raw)
    except (RecursionError, ValueError, TypeError, LookupError):
        return Bounce(frozenset(), frozenset(), _own_references(mail))
    temporary, permanent = failures(msg)
    try:
        enclosed = _enclosed_ids(msg)
    except Exception:  # a report too broken to read: its own references may still do
        enclosed = ()
    ids = enclosed + _own_references(mail)
    ids = tuple(mid for mid in dict.fromkeys(ids) if mid != mail.message_id)
    return Bounce(permanent, temporary - permanent, ids)


def failures(msg: Message) -> tuple[frozenset[str], frozenset[str]]:
    """(temporary, permanent) failed addresses by flufl.bounce; empty when it gives up."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # third-party heuristics on hostile input: no addresses, not a crash
        return frozenset(), frozenset()
    return _addresses(temporary), _addresses(permanent)


def _addresses(found: object) -> frozenset[str]:
    values = (a.decode("ascii", "replace") if isinstance(a, bytes) else str(a) for a in found)  # type: ignore[attr-defined]
    return frozenset(v.strip().strip("<>").lower() for v in values if "@" in v and not any(c.isspace() for c in v.strip()))


def _enclosed_ids(msg: Message) -> tuple[str, ...]:
    """Message-IDs of the enclosed original, then of headers quoted in the text."""
    enclosed: list[str] = []
    quoted: list[str] = []
    for part in _parts(msg):
        ctype = part.get_content_type()
        if ctype in _ENCLOSED or ctype in _ENCLOSED_HEADERS:
            # The parser reads message/* as an enclosed message; text/* stays text.
            inners = subparts(part) or [HeaderParser(policy=compat32).parsestr(_text(part))]
            for inner in inners:
                enclosed += _ids(inner.get("message-id", ""))
        elif part.get_content_maintype() == "text":
            quoted += _QUOTED_MESSAGE_ID.findall(_text(part))
    return tuple(enclosed + quoted)


def _parts(msg: Message) -> list[Message]:
    """The report's parts in order, not descending into an enclosed message."""
    found: list[Message] = []
    stack = [msg]
    while stack and len(found) < _MAX_PARTS:
        part = stack.pop()
        found.append(part)
        if part.get_content_maintype() == "multipart":
            stack.extend(reversed(subparts(part)))
    return found


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload() or "").encode("utf-8", "replace")
    return payload[:_MAX_TEXT].decode("utf-8", "replace")


def _ids(value: object) -> list[str]:
    return _MSG_ID.findall(str(value))


def _own_references(mail: ParsedMail) -> tuple[str, ...]:
    return mail.in_reply_to + tuple(reversed(mail.references))
