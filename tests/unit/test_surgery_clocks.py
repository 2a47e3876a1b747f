"""`#merge` and `#split` (pure parts): the command lines and the clocks of the result."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mailtriage.config.values import SlaSettings
from mailtriage.model import TicketRecord
from mailtriage.sla import calendar_from_config, lifecycle
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
        "started at the arrival of the message split off MT-1", "split off MT-1"]
