"""What commands and replies do to a ticket (tickets.py, pure)."""

from __future__ import annotations

import pytest

from mailtriage.tickets.commands import AddTag, Assign, SetSeverity, SetStatus, SetTier
from mailtriage.model import Severity, Status, Tier
from mailtriage.config.values import Agent
from mailtriage.tickets.transitions import (
    Change,
    TicketState,
    apply_command,
    find_agent,
    status_after_agent_reply,
    status_after_customer_reply,
)

AGENTS = [Agent(email="alice@example.test", name="Alice", tier=Tier.L1),
          Agent(email="bob@example.test", name="Bob Builder", tier=Tier.L2),
          Agent(email="@staff.example.test", name="Staff", tier=Tier.L1)]
ALICE = "alice@example.test"
STATE = TicketState(Status.NEW, Severity.S3, Tier.L1, None, ())


def change(command, state=STATE, actor=ALICE) -> Change:
    result = apply_command(state, command, actor, AGENTS)
    assert isinstance(result, Change), result
    return result


@pytest.mark.parametrize("start", list(Status))
@pytest.mark.parametrize("target", [Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED])
def test_agents_may_set_any_agent_status_from_any_status(start, target):
    result = change(SetStatus(target), TicketState(start, Severity.S3, Tier.L1, None, ()))
    assert result.state.status is target and result.event == "status"
    if start is target:
        assert "unchanged" in result.detail
    else:
        assert result.detail == f"{start.value} → {target.value} (by {ALICE})"


def test_severity_and_tier():
    assert change(SetSeverity(Severity.S1)).state.severity is Severity.S1
    assert change(SetSeverity(Severity.S1)).detail == f"S3 → S1 (by {ALICE})"
    assert change(SetSeverity(Severity.S3)).detail == f"S3 (unchanged, by {ALICE})"
    assert change(SetTier(Tier.L3)).state.tier is Tier.L3
    assert change(SetTier(Tier.L3)).event == "tier"


def test_assign_by_name_address_me_and_take():
    assert change(Assign("bob builder")).state.assignee == "bob@example.test"
    assert change(Assign("Bob Builder")).event == "assigned"
    assert change(Assign("bob")).state.assignee == "bob@example.test"            # the local part
    assert change(Assign("bob@example.test")).state.assignee == "bob@example.test"
    assert change(Assign("carol@staff.example.test")).state.assignee == "carol@staff.example.test"
    assert change(Assign("me")).state.assignee == ALICE


def test_assigning_somebody_who_is_no_agent_is_refused():
    result = apply_command(STATE, Assign("mallory"), ALICE, AGENTS)
    assert isinstance(result, str) and "no agent is called 'mallory'" in result
    assert "Alice" in result
    assert isinstance(apply_command(STATE, Assign("mallory@evil.example"), ALICE, AGENTS), str)


def test_tags_add_up_once():
    first = change(AddTag("vpn"))
    assert first.state.tags == ("vpn",)
    again = change(AddTag("vpn"), first.state)
    assert again.state.tags == ("vpn",) and "already there" in again.detail


def test_find_agent():
    assert find_agent("ALICE", AGENTS) == ALICE
    assert find_agent("Staff", AGENTS) is None             # a domain entry is nobody in particular
    assert find_agent("nobody@example.test", AGENTS) is None


@pytest.mark.parametrize("status, after", [
    (Status.NEW, Status.NEW), (Status.OPEN, Status.OPEN), (Status.PENDING, Status.OPEN),
    (Status.RESOLVED, Status.OPEN), (Status.CLOSED, None),
])
def test_a_customer_reply_reopens_pending_and_resolved_and_closed_stays_closed(status, after):
    assert status_after_customer_reply(status) is after


@pytest.mark.parametrize("status, after", [
    (Status.NEW, Status.OPEN), (Status.OPEN, Status.OPEN), (Status.PENDING, Status.PENDING),
    (Status.RESOLVED, Status.RESOLVED), (Status.CLOSED, Status.CLOSED),
])
def test_an_agent_answer_opens_a_new_ticket_only(status, after):
    assert status_after_agent_reply(status) is after
