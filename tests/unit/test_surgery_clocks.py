"""`#merge` and `#split` (pure parts): the command lines and the clocks of the result."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from mailtriage.app import load_config
from mailtriage.config.loaded import Config
from mailtriage.config.values import SlaSettings
from mailtriage.model import Level, ParsedMail, Severity, TicketRecord
from mailtriage.sla import calendar_from_config, lifecycle
from mailtriage.tickets import surgery
from mailtriage.tickets.change import Answered, Facts, Incoming, SplitOrder
from mailtriage.tickets.commands import Merge, Split, merge_numbers, parse_commands

CALENDARS = {"always": calendar_from_config("always", {"timezone": "UTC", "hours": "24x7"})}
SLA = SlaSettings.model_validate({"warn_at": "80%", "targets": {
    s: {"first_response": "1h", "resolution": "4h", "calendar": "always"} for s in ("S1", "S2", "S3", "S4")}})
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def ticket(number: int, opened: datetime) -> TicketRecord:
    record = TicketRecord(number, "x", "carla@customer.example", "new", "S3", "L1", "support", (), None, None,
                          opened, opened)
    return lifecycle.start(record, opened, SLA, CALENDARS)


def test_merge_and_split_lines():
    block = parse_commands("#merge MT-12\n#merge [mt-3]\n#split\n#merge twelve\n#split now\nHello")
    assert [p.command for p in block.commands] == [Merge("MT", 12), Merge("mt", 3), Split()]
    assert [e.line for e in block.errors] == ["#merge twelve", "#split now"]
    assert merge_numbers("> #merge MT-4\n#merge: MT-5") == (4, 5)


def test_the_merged_ticket_keeps_the_clock_that_has_run_longer():
    older, newer = ticket(1, T0), ticket(2, T0 + timedelta(minutes=20))
    now = T0 + timedelta(minutes=30)
    kept, said = lifecycle.merged(newer, older, "MT-1", now, SLA, CALENDARS)
    assert kept.first_response_due == T0 + timedelta(hours=1)        # MT-1's: 30m used, not 10m
    assert kept.resolution_due == T0 + timedelta(hours=4)
    assert said[0] == "first response: from MT-1 (30m used there, 10m here), due 2026-03-02T10:00:00+00:00"
    assert "merged MT-1 into this ticket" in kept.sla_data["log"][-1][1]
    # The other way round nothing changes: the survivor's clocks are the older ones.
    same, said = lifecycle.merged(older, newer, "MT-2", now, SLA, CALENDARS)
    assert same.first_response_due == older.first_response_due and said[0].startswith("first response: kept")


def test_a_split_off_ticket_runs_from_the_moved_messages_arrival():
    record = TicketRecord(0, "x", "carla@customer.example", "new", "S3", "L1", "support", (), None, None, T0, T0)
    split = lifecycle.split_off(record, T0, T0 + timedelta(minutes=45), "MT-1", SLA, CALENDARS)
    assert split.first_response_due == T0 + timedelta(hours=1) and split.sla_state == "ok"
    assert [what for _, what in split.sla_data["log"]][-2:] == [
        "started at the arrival of the message split off MT-1",
        "split off MT-1: the clocks run until an agent answers on this ticket (an answer in the #split mail "
        "stays on MT-1 and counts there)"]
    assert not lifecycle.is_history(split)


def _split_of(answered_mail: ParsedMail, config: Config, source: TicketRecord,
              history: datetime | None = None) -> SplitOrder:
    incoming = Incoming(ParsedMail(message_id="<a-1@example.test>", message_id_synthesized=False,
                                   subject="Re: [MT-1] x", from_addr="alice@example.test", from_name="",
                                   to=("support@example.test",), cc=(), reply_to=(), date=None,
                                   in_reply_to=(answered_mail.message_id,), references=(), body_text="#split"),
                        raw_id=9, source="stdin", content_key="k", now=T0 + timedelta(minutes=45), history=history)
    facts = Facts(answered=Answered(2, answered_mail, T0 + timedelta(minutes=20), first=False))
    order = surgery.split(incoming, source, facts, config, done=False)
    assert isinstance(order, SplitOrder), order
    return order


def _customer_mail(headers: tuple[tuple[str, str], ...]) -> ParsedMail:
    return ParsedMail(message_id="<c-2@customer.example>", message_id_synthesized=False, subject="Re: [MT-1] x",
                      from_addr="carla@customer.example", from_name="", to=("support@example.test",), cc=(),
                      reply_to=(), date=None, in_reply_to=(), references=(), body_text="Also: the printer.",
                      headers=headers)


def test_a_split_off_ticket_is_classified_through_the_priority_matrix():
    config = load_config(None)
    matrix = {Level.HIGH: [Severity.S1, Severity.S2, Severity.S3], Level.MEDIUM: [Severity.S2, Severity.S3,
                                                                                 Severity.S4],
              Level.LOW: [Severity.S3, Severity.S4, Severity.S4]}
    config = replace(config, settings=config.settings.model_copy(update={"priority_matrix": matrix}))
    order = _split_of(_customer_mail((("Importance", "high"),)), config, ticket(1, T0))
    # impact not stated (medium) × urgency high (Importance: high): S2, not the rules' default S3.
    assert order.verdict.decided_by["severity"] == "priority_matrix"
    assert (order.ticket.severity, order.ticket.impact, order.ticket.urgency) == ("S2", None, "high")


def test_a_ticket_split_off_a_history_ticket_is_history_too():
    imported = T0 + timedelta(days=30)
    source = lifecycle.as_history(ticket(1, T0), imported, SLA, CALENDARS)
    order = _split_of(_customer_mail(()), load_config(None), source)
    # Its milestones (from the arrival a month ago) are for the record: the sweep announces none.
    assert lifecycle.imported_at(order.ticket) == imported
    assert order.ticket.sla_data["log"][-1][1].endswith(
        "MT-1 was imported as history (2026-04-01T09:00+00:00), so this ticket is too: its milestones are "
        "recorded, never announced")
    # A #split in mail being imported as history: the same, from that import.
    assert lifecycle.imported_at(_split_of(_customer_mail(()), load_config(None), ticket(1, T0), imported).ticket) \
        == imported
    assert not lifecycle.is_history(_split_of(_customer_mail(()), load_config(None), ticket(1, T0)).ticket)
