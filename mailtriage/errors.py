"""The one exception hierarchy. cli/ maps it to exit codes, ingest/smtp.py to
SMTP replies and notify/outbox.py to what happens to a mail; every error
mailtriage raises on purpose is a MailtriageError and is defined here.

    MailtriageError
    ├── ConfigError          the config, rules, calendars or templates (exit 2)
    ├── CalendarError        one calendar definition; the loader makes it a ConfigError line
    ├── UsageError, NotFound, SchemaOutdated, AlreadyRunning     (exit 2)
    ├── TemporaryFailure     nothing lost, try again later (exit 75, SMTP 451)
    ├── DeliveryError        the outgoing relay or Maildir did not take a mail
    │   └── DeliveryDeferred     a lost connection mid-mail, a full disk: the outbox retries it
    │       └── RelayUnavailable     the relay cannot be reached or will not let us in: the
    │                                run stops and the relay is backed off, no mail charged
    └── HeaderInjection      a value for a header line was not one line
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
    """The command line asked for something that cannot be done."""

    exit_code = 2


class TemporaryFailure(MailtriageError):
    """Nothing was lost, but the caller should try again later (EX_TEMPFAIL)."""

    exit_code = 75


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
