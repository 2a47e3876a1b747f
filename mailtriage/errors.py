"""The short exception hierarchy; cli.py and the SMTP listener map it to exit
codes and SMTP replies in one place."""

from __future__ import annotations

from dataclasses import dataclass


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
