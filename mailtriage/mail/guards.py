"""Guards: is this mail automatic? The step right after parse.

    parse → **guards** → thread → classify → tickets → notify

DESIGN invariant 3, "no loops": we never auto-reply to automatic mail. Like
Mailman's rules (`rules/*.py`: a name, a description, one check) run from a
table (`chains/builtin.py`), each guard here is a named `Check` holding a
small predicate, and one short function runs a table of them in order. The
order matters only for which name is reported, and the pipeline acts on the
first: a mail loop (`hop-count`) comes before everything, since a message
that went round more than `limits.max_hops` relays must never be answered
or ticketed whatever else it is; then the most specific, so a delivery
report says `bounce` (the pipeline sends those to the bounce path,
`bounces.read()`) rather than `mailer-daemon`. Our own mail coming back by
its Message-ID needs the outbox, so the pipeline checks that.

The hop count is what Postfix's `hopcount_limit` (default 50) and RFC 5321
section 6.3 ("a simple counter of the number of Received headers") use: the
number of Received headers, parsed or not. mail-parser's parsed chain
(`received.delivery_path`, one hop per header by construction) would give
the same number at about 0.15 ms a hop (7.6 ms for a 51-hop loop) plus
55 to 100 ms to import mail-parser in every process; counting costs 2 µs.

Everything here works on a `ParsedMail` and is pure. Finding who a bounce
is about is bounces.py's (flufl.bounce is slow, about 15 ms a message, and
finds "failures" in ordinary replies), so the pipeline asks it only when
`is_bounce(mail)` is true.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from mailtriage.model import ParsedMail

MAX_HOPS = 50   # Received headers; Postfix's hopcount_limit. config.values.Limits.max_hops defaults to it
_DSN_REPORT_TYPES = ("delivery-status", "")  # a report without report-type is almost always a DSN
_COMMENT = re.compile(r"\([^()]*\)")
_TOKEN = re.compile(r"[a-z0-9_.-]+")
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([a-z0-9_.-]+)")
_DAEMON_LOCAL_PART = re.compile(
    r"(?:mailer[-_.]?daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?)(?:[-+_.=].*)?"
)
_OUT_OF_OFFICE_SUBJECT = re.compile(
    r"(?:(?:re|aw|sv|antw|fwd?|wg)\s*:\s*)*"
    r"(?:out of (?:the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|autosvar"
    r"|abwesenheitsnotiz|automatische antwort|afwezig|automatisch antwoord|automatisk svar"
    r"|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica"
    r"|resposta autom[áa]tica|odpowied[źz] automatyczna|automatick[áa] odpov[ěe]d"
    r"|vacation reply)",
    re.IGNORECASE,
)


# Subjects of vendor bounces that are not RFC 3464 DSNs (Exchange, qmail,
# Exim, Lotus, Novell, old sendmail …); only believed from a daemon-like sender.
_BOUNCE_SUBJECT = re.compile(
    r"(?:(?:fw|fwd)\s*:\s*)?(?:undeliverable|undelivered mail|undeliverable mail|returned mail"
    r"|mail delivery (?:failed|failure)|delivery (?:status notification|failure|has failed|notification)"
    r"|failure notice|non[- ]?delivery|nondeliverable|delivery report|mail system error"
    r"|unzustellbar|onbestelbaar|non remis|no se puede entregar)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Context:
    """What the checks know besides the mail: who we are."""

    own_addresses: frozenset[str] = frozenset()   # lower-cased, as ParsedMail's
    loop_id: str | None = None
    max_hops: int = MAX_HOPS

    @classmethod
    def of(cls, own_addresses: Iterable[str], loop_id: str | None, max_hops: int = MAX_HOPS) -> Context:
        return cls(frozenset(address.strip().lower() for address in own_addresses), loop_id, max_hops)


Predicate = Callable[[ParsedMail, Context], bool]


@dataclass(frozen=True)
class Check:
    """One named guard: `name` is what `automatic_reason` returns when it hits."""

    name: str
    description: str
    test: Predicate


# -- small predicates, built from data ---------------------------------------

def _tokens(value: str) -> list[str]:
    """Lower-cased words of a header value, comments dropped."""
    return _TOKEN.findall(_COMMENT.sub(" ", value.lower()))


def _first_token(mail: ParsedMail, header: str) -> str | None:
    """The first word of the first such header; "" if empty; None if absent."""
    value = mail.header(header)
    if value is None:
        return None
    tokens = _tokens(value)
    return tokens[0] if tokens else ""


def _first_token_in(header: str, values: Iterable[str]) -> Predicate:
    wanted = frozenset(values)
    return lambda mail, _: _first_token(mail, header) in wanted


def _present_and_not(header: str, values: Iterable[str]) -> Predicate:
    allowed = frozenset(values)
    return lambda mail, _: (token := _first_token(mail, header)) is not None and token not in allowed


def _any_token_in(header: str, values: Iterable[str]) -> Predicate:
    wanted = frozenset(values)
    return lambda mail, _: any(wanted.intersection(_tokens(v)) for v in mail.header_all(header))


def _any_header(*names: str) -> Predicate:
    wanted = frozenset(name.lower() for name in names)
    return lambda mail, _: any(name.lower() in wanted for name, _ in mail.headers)


def _header_prefix(prefix: str) -> Predicate:
    return lambda mail, _: any(name.lower().startswith(prefix) for name, _ in mail.headers)


def _from_local_part(pattern: re.Pattern[str]) -> Predicate:
    return lambda mail, _: bool(pattern.fullmatch(mail.from_addr.rpartition("@")[0] or mail.from_addr))


def _subject_starts(pattern: re.Pattern[str]) -> Predicate:
    return lambda mail, _: bool(pattern.match(mail.subject))


def _report_type(mail: ParsedMail) -> str | None:
    """report-type of a top-level multipart/report, else None."""
    content_type = (mail.header("content-type") or "").lower()
    if content_type.split(";", 1)[0].strip() != "multipart/report":
        return None
    found = _REPORT_TYPE.search(content_type)
    return found.group(1) if found else ""


def _from_own_address(mail: ParsedMail, context: Context) -> bool:
    return mail.from_addr in context.own_addresses


def _x_loop_is_ours(mail: ParsedMail, context: Context) -> bool:
    if not context.loop_id:
        return False
    ours = context.loop_id.strip().lower()
    return any(value.strip().lower() == ours for value in mail.header_all("x-loop"))


def _too_many_hops(mail: ParsedMail, context: Context) -> bool:
    hops = sum(1 for name, _ in mail.headers if name.lower() == "received")
    return hops > context.max_hops


def _is_bounce(mail: ParsedMail, _: Context) -> bool:
    return is_bounce(mail)


def _other_report(mail: ParsedMail, _: Context) -> bool:
    return _report_type(mail) not in (None, *_DSN_REPORT_TYPES)


def _null_return_path(mail: ParsedMail, _: Context) -> bool:
    return any(value.replace(" ", "") == "<>" for value in mail.header_all("return-path"))


# -- the tables --------------------------------------------------------------

AUTOMATIC: tuple[Check, ...] = (
    Check("hop-count", "more Received headers than limits.max_hops (default 50): a mail loop "
          "(RFC 5321 section 6.3)", _too_many_hops),
    Check("bounce", "a delivery status notification (multipart/report; report-type="
          "delivery-status) or a message from MAILER-DAEMON", _is_bounce),
    Check("report", "another machine report: a read receipt (disposition-notification), "
          "an abuse feedback report, ...", _other_report),
    Check("x-loop", "X-Loop carries our own loop id: this is our mail coming back", _x_loop_is_ours),
    Check("own-address", "From: is one of our own addresses", _from_own_address),
    Check("auto-submitted", "Auto-Submitted is present and not 'no' (RFC 3834)",
          _present_and_not("auto-submitted", {"no"})),
    Check("precedence", "Precedence: bulk, list, junk or auto_reply",
          _first_token_in("precedence", {"bulk", "list", "junk", "auto_reply"})),
    Check("list", "a List-* header (RFC 2369, RFC 2919): mailing-list traffic", _header_prefix("list-")),
    Check("mailer-daemon", "From: is a daemon, postmaster, no-reply or bounce address",
          _from_local_part(_DAEMON_LOCAL_PART)),
    Check("null-sender", "Return-Path is <>: nobody takes replies (RFC 3834 section 2)",
          _null_return_path),
)

OUT_OF_OFFICE: tuple[Check, ...] = (
    Check("auto-replied", "Auto-Submitted: auto-replied (RFC 3834)",
          _first_token_in("auto-submitted", {"auto-replied"})),
    Check("autoreply-header", "an X-Autoreply, X-Autorespond or similar header",
          _any_header("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-reply", "x-vacation")),
    Check("subject", "the subject starts like an out-of-office reply in one of several languages",
          _subject_starts(_OUT_OF_OFFICE_SUBJECT)),
)


# Not automatic mail: a wish about our answers. Exchange and Outlook put
# X-Auto-Response-Suppress on ordinary human mail; it asks that no automatic
# reply be sent to it (All, or AutoReply: "auto-replies other than
# out-of-office"; an acknowledgement is one). OOF alone asks only for no
# out-of-office notices, which we never send. The mail itself is handled as
# the person's mail it is: it notifies agents, reopens, is relayed.
NO_AUTO_REPLY = Check("x-auto-response-suppress", "X-Auto-Response-Suppress: All or AutoReply asks for no "
                      "automatic reply (Exchange, Outlook)",
                      _any_token_in("x-auto-response-suppress", {"all", "autoreply"}))


def _hits(checks: Iterable[Check], mail: ParsedMail, context: Context) -> Iterator[str]:
    """The one interpreter: names of the checks that hit, in table order."""
    return (check.name for check in checks if check.test(mail, context))


def automatic_reasons(
    mail: ParsedMail, own_addresses: frozenset[str] = frozenset(), loop_id: str | None = None,
    max_hops: int = MAX_HOPS,
) -> tuple[str, ...]:
    """Every reason this mail looks automatic (empty for human mail), for logs and events."""
    return tuple(_hits(AUTOMATIC, mail, Context.of(own_addresses, loop_id, max_hops)))


def automatic_reason(
    mail: ParsedMail, own_addresses: frozenset[str] = frozenset(), loop_id: str | None = None,
    max_hops: int = MAX_HOPS,
) -> str | None:
    """The first reason this mail looks automatic, or None for human mail."""
    return next(_hits(AUTOMATIC, mail, Context.of(own_addresses, loop_id, max_hops)), None)


def refuses_auto_reply(mail: ParsedMail) -> bool:
    """The sender asked for no automatic reply (no acknowledgement), though
    the mail is a person's (`NO_AUTO_REPLY`)."""
    return NO_AUTO_REPLY.test(mail, Context())


def is_out_of_office(mail: ParsedMail) -> bool:
    """An out-of-office or vacation auto-reply (a bounce is not one, though
    MTAs mark bounces Auto-Submitted: auto-replied too)."""
    return not is_bounce(mail) and next(_hits(OUT_OF_OFFICE, mail, Context()), None) is not None


def is_bounce(mail: ParsedMail) -> bool:
    """A delivery failure report: a DSN, anything from MAILER-DAEMON, or a
    vendor's non-standard report (a failure subject from postmaster, from
    nobody, or with a null Return-Path).

    Cheap (headers only); call `bounces.read()` next."""
    local_part = mail.from_addr.rpartition("@")[0] or mail.from_addr
    if _report_type(mail) in _DSN_REPORT_TYPES or local_part in ("mailer-daemon", "mailer_daemon"):
        return True
    daemonish = local_part in ("postmaster", "") or _null_return_path(mail, Context()) \
        or mail.from_addr.startswith("microsoftexchange")
    return daemonish and bool(_BOUNCE_SUBJECT.match(mail.subject))
