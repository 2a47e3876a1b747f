"""Impact × urgency → severity: the priority matrix (pure).

    rules' `set: {impact, urgency}` ─┐
    the customer's Importance /      ├─► impact, urgency ─► priority_matrix ─► severity
    X-Priority / Priority headers ───┘

The support practice's priority combines *impact* on the business (how many
people, how much of a service) with *urgency* as the customer perceives it.
Rules state impact (and may state urgency); the customer states urgency in
the headers their client writes. `priority_matrix` in the config maps the
pair to S1–S4 (rows impact high/medium/low; columns urgency high, medium,
low).

How a severity is reached, in this order:

1. a matching rule's `severity:` is the admin's explicit word: it wins;
2. else, when impact or urgency is known, the matrix decides; the one not
   known counts as `medium` (a mail saying only `X-Priority: 5` is medium
   impact, low urgency);
3. else the rules file's default, as without a matrix.

A rule's urgency wins over the customer's header: the admin's rule is about
the business, a header is one click in the customer's client (and some
clients mark every mail urgent). Without a matrix, impact and urgency are
recorded on the ticket and the severity is exactly what the rules say.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailtriage.model import Level, ParsedMail, Severity

Matrix = Mapping[Level, Sequence[Severity]]   # impact → severities for urgency high, medium, low

_COLUMNS = (Level.HIGH, Level.MEDIUM, Level.LOW)
_IMPORTANCE = {"high": Level.HIGH, "normal": Level.MEDIUM, "low": Level.LOW}
_PRIORITY = {"urgent": Level.HIGH, "normal": Level.MEDIUM, "non-urgent": Level.LOW}     # RFC 2156
_X_PRIORITY = {"1": Level.HIGH, "2": Level.HIGH, "3": Level.MEDIUM, "4": Level.LOW, "5": Level.LOW}
_LEADING_DIGIT = re.compile(r"\s*([1-5])\b")


@dataclass(frozen=True)
class Stated:
    """A level and who stated it: `rule vpn-down`, `Importance: high`, or nothing."""

    level: Level | None
    source: str = ""

    def shown(self, what: str) -> str:
        if self.level is None:
            return f"{what} medium (not stated)"
        return f"{what} {self.level.value} ({self.source})"


def urgency_header(mail: ParsedMail) -> Stated:
    """The urgency the customer's client wrote: Importance, then X-Priority,
    then Priority; the first one that says something we understand."""
    for name, table in (("Importance", _IMPORTANCE), ("X-Priority", None), ("Priority", _PRIORITY)):
        value = mail.header(name)
        if value is None:
            continue
        level = _x_priority(value) if table is None else table.get(value.strip().lower())
        if level is not None:
            return Stated(level, f"{name}: {_short(value)}")
    return Stated(None)


def _x_priority(value: str) -> Level | None:
    """`1`, `1 (Highest)`, `5 (Lowest)`: the leading digit."""
    found = _LEADING_DIGIT.match(value)
    return _X_PRIORITY[found.group(1)] if found else None


def _short(value: str) -> str:
    value = value.strip()
    return value if len(value) <= 40 else value[:37] + "..."


def severity_of(matrix: Matrix, impact: Level | None, urgency: Level | None) -> Severity:
    """The matrix's cell; an unknown level counts as medium."""
    row = matrix[impact or Level.MEDIUM]
    return row[_COLUMNS.index(urgency or Level.MEDIUM)]


def explain(severity: Severity, impact: Stated, urgency: Stated) -> str:
    """`severity S2: impact medium (rule vpn-down) × urgency high (Importance: high)`."""
    return f"severity {severity.value}: {impact.shown('impact')} × {urgency.shown('urgency')}"
