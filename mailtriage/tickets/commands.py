"""Commands in an agent's mail (pure): lines at the top of the body.

    #status open|pending|resolved|closed    #pending    #resolve
    #severity S1..S4    #tier L1..L4    #assign NAME|me    #take    #tag X
    #merge MT-n    #split                  (ticket surgery: tickets.surgery)

The command block is every line from the top of the form `#word …`, blank
lines between them allowed; the first other line ends it. `parse_commands`
turns it into typed values, in order, and keeps each line it did not
understand with the reason, so that the agent hears about it: a command is
never dropped silently. The body without the block is what gets relayed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from mailtriage.model import Severity, Status, Tier

MAX_COMMANDS = 20                    # more lines than this at the top is not a command block
_LINE = re.compile(r"#([A-Za-z][A-Za-z_-]{0,30})\s*:?\s*(.*)")
_TAG = re.compile(r"[\w][\w.+-]{0,49}")
AGENT_STATUSES = (Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED)
ME = "me"


@dataclass(frozen=True)
class SetStatus:
    status: Status


@dataclass(frozen=True)
class SetSeverity:
    severity: Severity


@dataclass(frozen=True)
class SetTier:
    tier: Tier


@dataclass(frozen=True)
class Assign:
    who: str                         # an agent's name or address, or "me"


@dataclass(frozen=True)
class AddTag:
    tag: str


@dataclass(frozen=True)
class Merge:
    """`#merge MT-n`: ticket n joins the ticket this mail is about."""

    prefix: str                      # as written (checked against ticket_prefix by the ticket step)
    number: int


@dataclass(frozen=True)
class Split:
    """`#split`: the customer message this mail answers, and the later ones of its thread, move to a new ticket."""


Command = Union[SetStatus, SetSeverity, SetTier, Assign, AddTag, Merge, Split]
_REF = re.compile(r"\[?\s*([A-Za-z][A-Za-z0-9]{0,15})-(\d{1,12})\s*\]?")


@dataclass(frozen=True)
class Parsed:
    line: str                        # the line as written (for events)
    command: Command


@dataclass(frozen=True)
class NotUnderstood:
    line: str
    why: str


@dataclass(frozen=True)
class CommandBlock:
    commands: tuple[Parsed, ...]
    errors: tuple[NotUnderstood, ...]
    body: str                        # the text after the block

    @property
    def empty(self) -> bool:
        return not self.commands and not self.errors


def parse_commands(text: str) -> CommandBlock:
    lines = text.replace("\r\n", "\n").split("\n")
    commands: list[Parsed] = []
    errors: list[NotUnderstood] = []
    index = 0
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        if not _LINE.fullmatch(line) or len(commands) + len(errors) >= MAX_COMMANDS:
            break                    # ordinary text (a "#1 priority" line, too) ends the block
        result = parse_line(line)
        (errors if isinstance(result, NotUnderstood) else commands).append(result)  # type: ignore[arg-type]
    else:
        index = len(lines)
    return CommandBlock(tuple(commands), tuple(errors), "\n".join(lines[index:]).strip("\n"))


def parse_line(line: str) -> Parsed | NotUnderstood:
    match = _LINE.fullmatch(line)
    if not match:
        return NotUnderstood(line, "not a command (write #name, then its value)")
    name, arg = match.group(1).lower(), match.group(2).strip()
    handler = _HANDLERS.get(name)
    if handler is None:
        return NotUnderstood(line, f"unknown command #{name}")
    result = handler(arg)
    if isinstance(result, str):
        return NotUnderstood(line, result)
    return Parsed(line, result)


def _status(arg: str) -> Command | str:
    wanted = arg.lower()
    for status in AGENT_STATUSES:
        if status.value == wanted:
            return SetStatus(status)
    return f"#status takes one of {', '.join(s.value for s in AGENT_STATUSES)}, not {arg!r}"


def _no_arg(command: Command, name: str):  # type: ignore[no-untyped-def]
    def handler(arg: str) -> Command | str:
        return command if not arg else f"#{name} takes no value (got {arg!r})"
    return handler


def _severity(arg: str) -> Command | str:
    try:
        return SetSeverity(Severity(arg.upper()))
    except ValueError:
        return f"#severity takes S1, S2, S3 or S4, not {arg!r}"


def _tier(arg: str) -> Command | str:
    try:
        return SetTier(Tier(arg.upper()))
    except ValueError:
        return f"#tier takes L1, L2, L3 or L4, not {arg!r}"


def _assign(arg: str) -> Command | str:
    if not arg:
        return "#assign needs a name, an address or `me`"
    return Assign(ME if arg.lower() == ME else arg)


def _tag(arg: str) -> Command | str:
    if not _TAG.fullmatch(arg):
        return f"#tag takes one word (letters, digits, . _ + -), not {arg!r}"
    return AddTag(arg.lower())


def _merge(arg: str) -> Command | str:
    match = _REF.fullmatch(arg)
    if match is None:
        return f"#merge takes a ticket reference such as MT-12, not {arg!r}"
    return Merge(match.group(1), int(match.group(2)))


def merge_numbers(text: str) -> tuple[int, ...]:
    """The ticket numbers `#merge` lines in `text` name (for the store to look up first)."""
    return tuple(sorted({int(m.group(1)) for m in re.finditer(
        r"#merge\s*:?\s*\[?\s*[A-Za-z][A-Za-z0-9]{0,15}-(\d{1,12})", text, re.IGNORECASE)}))


def asks_split(text: str) -> bool:
    return re.search(r"^\s*#split\b", text, re.IGNORECASE | re.MULTILINE) is not None


_HANDLERS = {
    "status": _status,
    "pending": _no_arg(SetStatus(Status.PENDING), "pending"),
    "resolve": _no_arg(SetStatus(Status.RESOLVED), "resolve"),
    "resolved": _no_arg(SetStatus(Status.RESOLVED), "resolved"),
    "close": _no_arg(SetStatus(Status.CLOSED), "close"),
    "reopen": _no_arg(SetStatus(Status.OPEN), "reopen"),
    "severity": _severity,
    "tier": _tier,
    "assign": _assign,
    "take": _no_arg(Assign(ME), "take"),
    "tag": _tag,
    "merge": _merge,
    "split": _no_arg(Split(), "split"),
}
