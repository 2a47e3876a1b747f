"""The one exception hierarchy, and the one mapping of failures to exit codes
and SMTP replies (`exit_code`, `smtp_reply`; cli/ and ingest/smtp.py call
them). notify/outbox.py decides what a DeliveryError does to a mail. Every
error mailtriage raises on purpose is a MailtriageError and is defined here.

    MailtriageError
    ├── ConfigError          the config, rules, calendars or templates (exit 2)
    ├── CalendarError        one calendar definition; the loader makes it a ConfigError line
    ├── UsageError, NotFound, SchemaOutdated, AlreadyRunning     (exit 2)
    ├── TemporaryFailure     nothing lost, try again later (exit 75, SMTP 451)
    ├── OAuth2Refused        the provider refused a refresh token for good (`oauth login` again)
    ├── DeliveryError        the outgoing relay or Maildir did not take a mail
    │   └── DeliveryDeferred     a lost connection mid-mail, a full disk: the outbox retries it
    │       └── RelayUnavailable     the relay cannot be reached or will not let us in: the
    │                                run stops and the relay is backed off, no mail charged
    └── HeaderInjection      a value for a header line was not one line

An MTA's pipe (`ingest` reading stdin) must never see 1 or 2, which Postfix,
Exim and sendmail turn into a bounce: there a configuration that cannot be
loaded is 78 (EX_CONFIG) and every other failure 75 (EX_TEMPFAIL). The
SMTP/LMTP listener answers our own failures with 451, or 421 while it shuts
down; never 5xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class MailtriageError(Exception):
    """Base of every error mailtriage raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One configuration problem, printed as `FILE:LINE: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line == 0:                  # a whole file (a token file, a template folder)
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(MailtriageError):
    """The configuration (or a rules file, calendar or template) is invalid."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CalendarError(MailtriageError, ValueError):
    """A calendar definition is invalid; `path` leads to the bad value.

    `path` is relative to the calendar's mapping (e.g. `("hours", "mon-fry")`),
    so the config loader can find the line; the message starts with its key.
    It is a ValueError too: the loader reports every bad value alike.
    """

    exit_code = 2

    def __init__(self, path: tuple[Any, ...], message: str):
        self.path = path
        super().__init__(f"{path[0]}: {message}" if path else message)


class UsageError(MailtriageError):
    """The command line asked for something that cannot be done; `usage` is
    the synopsis to print above the message, when the parser refused it."""

    exit_code = 2

    def __init__(self, message: str, usage: str = ""):
        self.usage = usage
        super().__init__(message)


class TemporaryFailure(MailtriageError):
    """Nothing was lost, but the caller should try again later (EX_TEMPFAIL)."""

    exit_code = 75


class OAuth2Refused(MailtriageError):
    """The token endpoint refused the refresh token (`invalid_grant`: revoked,
    expired, consent withdrawn) or the client: no retry helps, only a new
    `mailtriage oauth login`. `reason` is the OAuth2 error code."""

    exit_code = 2

    def __init__(self, reason: str, text: str):
        self.reason = reason
        super().__init__(text)


class SchemaOutdated(MailtriageError):
    """The database schema is older than this version of mailtriage."""

    exit_code = 2


class NotFound(MailtriageError):
    exit_code = 2


class AlreadyRunning(MailtriageError):
    """Another daemon already runs on this SQLite database."""

    exit_code = 2


class DeliveryError(MailtriageError):
    """A sender (notify/send.py) could not hand a mail over; the outbox row
    says what happens next, so this never reaches a command's exit code.
    (A recipient the relay refuses, 4xx or 5xx, is no exception: the sender
    returns each recipient's reply and the outbox decides.)"""


class DeliveryDeferred(DeliveryError):
    """A lost connection mid-mail, a full disk: the mail stays pending and is
    retried, and the try counts against its `max_attempts`."""


class RelayUnavailable(DeliveryDeferred):
    """The relay could not be reached, went silent, closed the service (421) or
    would not let us in (454, 530, 534, 535: a rotated password, an expired
    token). That says nothing about the mail: the outbox ends the run, backs
    off the relay and, unless `charged` (the relay went silent in the middle
    of this mail, which might be the mail's doing), counts no attempt.
    `cause` is a short name for the kind of failure ("authentication
    failed"); the outage is logged again when it changes."""

    def __init__(self, text: str, cause: str, *, charged: bool = False):
        super().__init__(text)
        self.cause = cause
        self.charged = charged


class HeaderInjection(MailtriageError, ValueError):
    """A value that must be a single header line was not (notify/compose.py).
    A ValueError too: it is bad data, refused before any mail is built."""


EX_TEMPFAIL = 75        # sysexits.h: try again later; every MTA keeps the message
EX_CONFIG = 78          # sysexits.h: local configuration error


def exit_code(exc: BaseException, *, mta_pipe: bool = False) -> int:
    """The exit status for a failure. In the MTA's pipe a bad config or command
    line (the master.cf entry is configuration too) is 78, anything else 75."""
    if mta_pipe:
        return EX_CONFIG if isinstance(exc, (ConfigError, UsageError)) else EX_TEMPFAIL
    return exc.exit_code if isinstance(exc, MailtriageError) else 1


def smtp_reply(exc: BaseException | None, *, closing: bool = False) -> str:
    """The listener's answer when it could not take a message because of us:
    4xx, so the sending MTA keeps the message and retries."""
    code = "421 4.3.2 shutting down" if closing else "451 4.3.0 could not store the message"
    return f"{code}, try again later" + (f" ({one_line(exc)})" if exc is not None else "")


def one_line(exc: BaseException) -> str:
    """A failure as one line: its message, and what caused it when that says more
    (a database driver's own words rather than SQLAlchemy's statement dump)."""
    if isinstance(exc, ConfigError):
        more = len(exc.problems) - 1
        text = str(exc.problems[0]) if exc.problems else "invalid configuration"
        return text + (f" (and {more} more: run `mailtriage config check`)" if more > 0 else "")
    driver = getattr(exc, "orig", None)           # SQLAlchemy's DBAPIError wraps the driver's error
    if isinstance(driver, BaseException):
        return _first_line(driver)[:500]
    text = _first_line(exc)
    if exc.__cause__ is not None:
        detail = one_line(exc.__cause__)
        last = text.rsplit(": ", 1)[-1]           # "could not store: OperationalError" + its details
        if detail.startswith(last):
            text = text[:len(text) - len(last)] + detail
        elif detail not in text:
            text = f"{text}: {detail}"
    return text[:500]


def _first_line(exc: BaseException) -> str:
    """`Name: message` (only the message for our own errors, which say what they are)."""
    lines = str(exc).strip().splitlines()
    message = " ".join(lines[0].split()) if lines else ""
    if isinstance(exc, MailtriageError) and message:
        return message
    return f"{exc.__class__.__name__}: {message}" if message else exc.__class__.__name__
