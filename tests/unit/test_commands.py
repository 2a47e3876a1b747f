"""Agents' commands: parsing the block at the top of a mail (pure)."""

from __future__ import annotations

import pytest

from mailtriage.tickets.commands import (
    AddTag,
    Assign,
    NotUnderstood,
    SetSeverity,
    SetStatus,
    SetTier,
    parse_commands,
    parse_line,
)
from mailtriage.model import Severity, Status, Tier


@pytest.mark.parametrize("line, command", [
    ("#status open", SetStatus(Status.OPEN)),
    ("#status pending", SetStatus(Status.PENDING)),
    ("#status resolved", SetStatus(Status.RESOLVED)),
    ("#status closed", SetStatus(Status.CLOSED)),
    ("#STATUS Resolved", SetStatus(Status.RESOLVED)),
    ("#status: pending", SetStatus(Status.PENDING)),
    ("#pending", SetStatus(Status.PENDING)),
    ("#resolve", SetStatus(Status.RESOLVED)),
    ("#severity S1", SetSeverity(Severity.S1)),
    ("#severity s4", SetSeverity(Severity.S4)),
    ("#tier L2", SetTier(Tier.L2)),
    ("#tier l4", SetTier(Tier.L4)),
    ("#assign Bob", Assign("Bob")),
    ("#assign bob@example.test", Assign("bob@example.test")),
    ("#assign me", Assign("me")),
    ("#take", Assign("me")),
    ("#tag VPN", AddTag("vpn")),
    ("#tag customer-x.2", AddTag("customer-x.2")),
])
def test_each_command_parses_to_its_value(line, command):
    parsed = parse_line(line)
    assert not isinstance(parsed, NotUnderstood), parsed
    assert parsed.command == command and parsed.line == line


@pytest.mark.parametrize("line, why", [
    ("#status new", "#status takes one of open, pending, resolved, closed"),
    ("#status", "#status takes one of"),
    ("#severity S5", "#severity takes S1, S2, S3 or S4"),
    ("#severity high", "#severity takes"),
    ("#tier L0", "#tier takes L1, L2, L3 or L4"),
    ("#assign", "#assign needs a name"),
    ("#pending now", "#pending takes no value"),
    ("#take it", "#take takes no value"),
    ("#tag two words", "#tag takes one word"),
    ("#priority high", "unknown command #priority"),
])
def test_invalid_commands_say_why(line, why):
    parsed = parse_line(line)
    assert isinstance(parsed, NotUnderstood) and parsed.line == line
    assert parsed.why.startswith(why)


def test_the_block_is_the_command_lines_at_the_top_in_order():
    block = parse_commands("\n#severity S1\n\n#assign me\n#bogus\n#tag vpn\nHello Carla,\n#status closed\n\nBye")
    assert [p.command for p in block.commands] == [SetSeverity(Severity.S1), Assign("me"), AddTag("vpn")]
    assert [e.line for e in block.errors] == ["#bogus"]
    assert block.body == "Hello Carla,\n#status closed\n\nBye"          # a later # line is text


def test_text_without_commands_is_left_alone():
    block = parse_commands("Hello,\n\n#status resolved is what I would do.\n")
    assert block.empty and block.body == "Hello,\n\n#status resolved is what I would do."


def test_a_numbered_heading_is_text_not_an_error():
    block = parse_commands("#1 priority: the printer\nIt smokes.")
    assert block.empty and block.body.startswith("#1 priority")


def test_only_commands_leave_no_body():
    block = parse_commands("#resolve\r\n#tag done\r\n")
    assert len(block.commands) == 2 and block.body == ""
