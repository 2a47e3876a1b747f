"""Received: the path a message took to reach us, hop by hop. (pure)

    parse ─► **received.delivery_path** ─► what an operator is shown of a message

Each MTA that relays a message puts a `Received:` trace field on top (RFC
5321 section 4.4), so the headers read bottom-up are the delivery path:
where the message was first handed over, then each relay, then our own MX.
Nothing in them is trusted: every hop below our own MX is whatever the
sender, or a relay it controls, chose to write.

The clauses (`from`, `by`, `with`, `id`, `for`, the date after the `;`) are
mail-parser's own reading (`mailparser.utils.receiveds_parsing`): a
single-pass scanner on the RFC 5321 keywords that skips comments, quoted
strings and domain literals (SpamScope/mail-parser#150 replaced its regexes;
4.8 is the version measured and fuzzed here). A header it cannot split (an
unbalanced comment or quote, stray `;`s) is still a hop, with only its raw
text, so `len(delivery_path(mail))` is always the number of Received
headers.

It reads `ParsedMail.headers` (decoded, one line each, no control
characters), so it needs no second parse of the bytes. mail-parser scans in
Python, about 0.15 ms a hop: over the shared corpus (292 messages, 91 with
Received headers, 303 in all) 0.19 ms a message, 0.6 ms one that has any,
against 1.4 ms for our whole parse(); 7.6 ms for a 51-hop loop. Importing
mail-parser costs another 55 to 100 ms once per process. That is cheap for
showing one message, not for every message: the loop guard (`guards.py`)
counts the headers instead, which gives the same number in 2 µs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from mailparser.utils import receiveds_parsing

from mailtriage.model import ParsedMail

# mail-parser scans a header in Python, 0.5 to 1 µs a character: a 25 MB
# header would take 15 s or more. Real ones are 100 to 400 characters (321
# at most in the corpus); a longer one is a hop with only its raw text.
_MAX_PARSED = 2_000


@dataclass(frozen=True)
class Hop:
    """One relay of the message, as mail-parser reads its Received header.

    A clause the header lacks (or mail-parser could not find) is ""."""

    from_: str                    # who handed it over: HELO name, (reverse DNS [IP]) as written
    by: str                       # who took it
    with_: str                    # the protocol: SMTP, ESMTPS, LMTP, "Microsoft SMTP Server" …
    for_: str                     # the envelope recipient, when the MTA tells
    id: str                       # the receiving MTA's queue id: what its log is searched for
    date: datetime | None         # when it was taken, in UTC; None if missing or unreadable
    raw: str                      # the whole header value, as decoded by parse()


def received_headers(mail: ParsedMail) -> tuple[str, ...]:
    """The Received header values in the message's order: the newest (ours) first."""
    return tuple(value for name, value in mail.headers if name.lower() == "received")


def delivery_path(mail: ParsedMail) -> tuple[Hop, ...]:
    """The hops from the first (the sender's submission) to the last (our MX).

    Never raises: a header mail-parser cannot read is a hop with only `raw`."""
    headers = received_headers(mail)
    if not headers:
        return ()
    newest_first = [value if len(value) <= _MAX_PARSED else "" for value in headers]
    try:
        parsed = receiveds_parsing(newest_first)
    except Exception:  # a bug of mail-parser's on hostile input costs the clauses, not the hops
        parsed = []
    if len(parsed) != len(headers):
        parsed = [{} for _ in headers]
    # receiveds_parsing returns the oldest first; the headers are newest first.
    return tuple(_hop(fields, raw) for fields, raw in zip(parsed, reversed(headers)))


def _hop(fields: Mapping[str, object], raw: str) -> Hop:
    return Hop(from_=_text(fields, "from"), by=_text(fields, "by"), with_=_text(fields, "with"),
               for_=_text(fields, "for"), id=_text(fields, "id"), date=_utc(fields.get("date_utc")),
               raw=raw)


def _text(fields: Mapping[str, object], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


def _utc(value: object) -> datetime | None:
    """mail-parser gives the date as an ISO 8601 string in UTC (its `date_utc`)."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
