"""SLA end to end: drive `--now` through tickets' lives, checking the outbox at
every step — warnings, breaches, the L1 → L4 ladder, pauses, held notices,
`sla explain` and `report sla`. Status changes the agents' #commands will
make are made here through the store and `lifecycle`, as those commands do."""

from __future__ import annotations

from dataclasses import replace

import email
import email.policy
import json
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

import pytest

from helpers import Site, bare, eml, make_site

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)        # Monday, 10:00 in Amsterdam


def at(minutes: float, base: datetime = T0) -> str:
    return (base + timedelta(minutes=minutes)).isoformat()


def tick(site: Site, now: str) -> str:
    return site.ok("sla", "tick", "--now", now).strip()


def outbox(site: Site) -> list[tuple[str, tuple[str, ...]]]:
    """(kind, recipients) of every outbox row, oldest first."""
    rows = json.loads(site.ok("outbox", "list", "--all", "--json"))
    return [(row["kind"], tuple(row["to"])) for row in rows]


def delivered(site: Site, now: str) -> list[EmailMessage]:
    """Flush the outbox at `now` into the site's Maildir; the mails there, oldest first."""
    site.ok("outbox", "flush", now=now)
    folder = site.dir / "outbox" / "new"
    files = sorted(folder.iterdir(), key=lambda p: int(p.name.split("-")[2].split(".")[0])) if folder.is_dir() else []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]  # type: ignore[misc]


def new_ticket(site: Site, now: str, subject: str = "Printer on fire", body: str = "It is smoking.",
               message_id: str = "<c-1@customer.example>") -> str:
    path = site.dir / f"{abs(hash(message_id))}.eml"
    path.write_bytes(eml(subject, body, message_id=message_id))
    [line] = site.ingest(path, now=now)
    ref, action = line.split()
    assert action == "new"
    return ref


def change(site: Site, number: int, now: str, edit: Callable) -> None:  # type: ignore[type-arg]
    """Change a ticket through the store, as the agents' commands do."""
    from mailtriage.app import build_app, load_config
    from mailtriage.clock import FixedClock, parse_instant
    from mailtriage.store.records import copy_onto, record_of
    from mailtriage.store.schema import Ticket

    app = build_app(load_config(site.config), FixedClock(parse_instant(now)))
    try:
        with app.store.session() as session, session.begin():
            ticket = session.get(Ticket, number)
            copy_onto(ticket, edit(record_of(ticket), parse_instant(now), app.config))
    finally:
        app.store.close()


def set_status(status: str) -> Callable:  # type: ignore[type-arg]
    from mailtriage.sla import lifecycle

    def edit(ticket, now, config):  # type: ignore[no-untyped-def]
        changed = replace(ticket, status=status)
        return lifecycle.status_changed(changed, ticket.status, now, config.settings.sla, config.calendars)
    return edit


def agent_reply(ticket, now, config):  # type: ignore[no-untyped-def]
    from mailtriage.sla import lifecycle

    sla, calendars = config.settings.sla, config.calendars
    answered = lifecycle.first_response(replace(ticket, status="open"), now, sla, calendars)
    return lifecycle.status_changed(answered, ticket.status, now, sla, calendars)


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Site:
    return make_site(tmp_path / "site")


def test_the_escalation_ladder_first_response_resolution_and_twice(site: Site) -> None:
    ref = new_ticket(site, at(0))                          # S3: 1h / 3h in office hours
    assert outbox(site) == [("acknowledgement", ("carla@customer.example",))]
    assert site.ticket(ref)["sla_state"] == "ok"

    assert tick(site, at(47)).startswith("swept 0 ticket(s)")
    assert len(outbox(site)) == 1

    assert "1 warning(s)" in tick(site, at(48))                        # 80% of the first-response hour
    assert outbox(site)[1:] == [("warning", ("l1-team@example.test",))]
    assert site.ticket(ref)["sla_state"] == "warning"
    for again in (48, 50, 59):
        assert tick(site, at(again)).startswith("swept 0 ticket(s)")   # each notice goes out once
    assert len(outbox(site)) == 2

    assert "1 escalation(s)" in tick(site, at(60))                     # first response missed
    assert outbox(site)[2:] == [("escalation", ("l2-team@example.test",))]
    ticket = site.ticket(ref)
    assert (ticket["tier"], ticket["sla_state"]) == ("L2", "breached")
    types = [e["type"] for e in ticket["events"]]
    assert types[-3:] == ["warning", "breached", "escalated"]
    assert "L1 → L2" in ticket["events"][-1]["detail"]

    tick(site, at(144))                                                # 80% of the 3h resolution
    assert outbox(site)[3:] == [("warning", ("l2-team@example.test",))]
    tick(site, at(180))
    assert outbox(site)[4:] == [("escalation", ("l3-team@example.test",))]
    assert site.ticket(ref)["tier"] == "L3"
    assert tick(site, at(359)).startswith("swept 0")
    tick(site, at(360))                                                # twice the resolution target
    assert outbox(site)[5:] == [("escalation", ("vendor@partner.example",))]
    assert site.ticket(ref)["tier"] == "L4"
    assert tick(site, at(24 * 60)).startswith("swept 0")
    assert len(outbox(site)) == 6

    mails = delivered(site, at(24 * 60))
    assert [bare(m["To"]) for m in mails] == ["carla@customer.example", "l1-team@example.test", "l2-team@example.test",
                                        "l2-team@example.test", "l3-team@example.test", "vendor@partner.example"]
    for notice in mails[1:]:
        assert notice["Auto-Submitted"] == "auto-generated"
        assert "[MT-1]" in notice["Subject"]
        assert notice["In-Reply-To"] == "<c-1@customer.example>"
        assert "<c-1@customer.example>" in notice["References"]
    assert {m["Subject"] for m in mails} == {"[MT-1] Printer on fire"}      # one thread in the agents' clients
    assert mails[1].get_content().startswith("SLA warning: first response due Mon 2026-03-02 11:00 CET")
    body = mails[2].get_content()
    assert "escalated from L1 to L2" in body and "first response target missed" in body
    for part in ("Summary", "Deadlines", "It is smoking.", "History", "mailtriage tickets show MT-1"):
        assert part in body
    assert "twice the resolution target" in mails[5].get_content().splitlines()[0]


def test_first_reply_in_time_then_resolution_breach_goes_to_l2_and_twice_to_l3(sqlite_site: Site) -> None:
    site = sqlite_site
    ref = new_ticket(site, at(0))
    change(site, 1, at(30), agent_reply)                           # answered within the hour
    ticket = site.ticket(ref)
    assert ticket["first_responded_at"] == at(30) and ticket["sla_state"] == "ok"
    assert tick(site, at(60)).startswith("swept 0")                # no first-response warning or breach
    tick(site, at(144))
    assert outbox(site)[1:] == [("warning", ("l1-team@example.test",))]
    tick(site, at(180))
    assert outbox(site)[2:] == [("escalation", ("l2-team@example.test",))]
    assert site.ticket(ref)["tier"] == "L2"
    tick(site, at(360))
    assert outbox(site)[3:] == [("escalation", ("l3-team@example.test",))]
    assert site.ticket(ref)["tier"] == "L3"


def test_pending_pauses_both_clocks_and_the_customer_resumes_them(sqlite_site: Site) -> None:
    site = sqlite_site
    ref = new_ticket(site, at(0))
    change(site, 1, at(30), set_status("pending"))                 # 30 minutes of each clock used
    assert site.ticket(ref)["sla_state"] == "paused"
    assert tick(site, at(300)).startswith("swept 0")               # hours later: nothing is due
    assert len(outbox(site)) == 1
    # The customer answers Monday 20:00 CET, when the office has closed: the clocks
    # resume and count from Tuesday 08:00 CET (07:00 UTC) with 30 minutes left.
    change(site, 1, at(600), set_status("open"))
    ticket = site.ticket(ref)
    assert ticket["first_response_due"] == "2026-03-03T07:30:00+00:00"
    assert ticket["resolution_due"] == "2026-03-03T09:30:00+00:00"
    assert ticket["sla_state"] == "ok"
    assert tick(site, "2026-03-03T07:17:00+00:00").startswith("swept 0")
    tick(site, "2026-03-03T07:18:00+00:00")                        # 48 of 60 minutes used
    assert outbox(site)[1:] == [("warning", ("l1-team@example.test",))]

    explained = site.ok("sla", "explain", ref, "--now", "2026-03-03T07:18:00+00:00")
    assert "pauses:" in explained and "status new → pending" in explained
    assert "status pending → open" in explained
    assert "ran 2026-03-02T09:00:00+00:00 → 2026-03-02T09:30:00+00:00 in office: 30m counted" in explained
    assert "counted  Tue 2026-03-03 08:00 CET - 08:30 CET  30m" in explained


def test_resolving_stops_and_reopening_restarts_with_the_time_used(sqlite_site: Site) -> None:
    site = sqlite_site
    ref = new_ticket(site, at(0))
    change(site, 1, at(20), agent_reply)
    change(site, 1, at(120), set_status("resolved"))               # 2h of 3h used
    ticket = site.ticket(ref)
    assert ticket["resolved_at"] == at(120) and ticket["sla_state"] == "met"
    assert tick(site, at(600)).startswith("swept 0")
    change(site, 1, at(24 * 60), set_status("open"))               # reopened Tuesday 10:00 CET
    ticket = site.ticket(ref)
    assert ticket["resolved_at"] is None
    assert ticket["resolution_due"] == at(25 * 60)                 # the hour that was left
    change(site, 1, at(24 * 60 + 30), set_status("closed"))
    assert site.ticket(ref)["sla_state"] == "met"
    assert tick(site, at(3 * 24 * 60)).startswith("swept 0")
    assert outbox(site) == [("acknowledgement", ("carla@customer.example",))]


def test_severity_change_keeps_the_time_used(sqlite_site: Site) -> None:
    from mailtriage.sla import lifecycle

    site = sqlite_site
    ref = new_ticket(site, at(0))                                  # S3, office hours

    def raise_to_s1(ticket, now, config):  # type: ignore[no-untyped-def]
        return lifecycle.severity_changed(replace(ticket, severity="S1"), now, config.settings.sla, config.calendars)

    change(site, 1, at(10), raise_to_s1)                           # S1: 15m / 1h on the 24x7 calendar
    ticket = site.ticket(ref)
    assert ticket["first_response_due"] == at(15) and ticket["resolution_due"] == at(60)
    tick(site, at(15))                                             # the warning at 12m is skipped: breached
    assert outbox(site)[1:] == [("escalation", ("l2-team@example.test",))]


def test_notices_to_a_tier_wait_for_its_working_hours_except_s1(sqlite_site: Site) -> None:
    site = sqlite_site
    text = site.config.read_text()
    for tier in ("L1", "L2"):
        text = text.replace(f"{tier}: {{notify: [{tier.lower()}-team@example.test]}}",
                            f"{tier}: {{notify: [{tier.lower()}-team@example.test], calendar: office}}")
    site.config.write_text(text)
    evening = datetime(2026, 3, 2, 18, 0, tzinfo=timezone.utc)     # Monday 19:00 CET, office open
    new_ticket(site, at(0, evening))                               # S3
    tick(site, at(48, evening))                                    # 19:48 CET: sent at once
    tick(site, at(60, evening))                                    # 20:00 CET: breached, L2 is closed
    rows = json.loads(site.ok("outbox", "list", "--all", "--json"))
    assert [(r["kind"], r["due_at"]) for r in rows[1:]] == [
        ("warning", at(48, evening)), ("escalation", "2026-03-03T07:00:00+00:00")]   # Tuesday 08:00 CET
    assert "held until 2026-03-03T07:00:00+00:00" in site.ticket("MT-1")["events"][-1]["detail"]
    assert [bare(m["To"]) for m in delivered(site, at(90, evening))] == ["carla@customer.example", "l1-team@example.test"]
    assert len(delivered(site, "2026-03-03T07:00:00+00:00")) == 3

    night = datetime(2026, 3, 2, 22, 0, tzinfo=timezone.utc)
    ref = new_ticket(site, at(0, night), "VPN is down", "Nobody can work.", "<c-2@customer.example>")
    assert site.ticket(ref)["severity"] == "S1"
    tick(site, at(12, night))                                      # S1: never held
    row = json.loads(site.ok("outbox", "list", "--json"))[-1]
    assert (row["kind"], row["due_at"]) == ("warning", at(12, night))


def test_explain_names_the_windows_holidays_and_weekend(sqlite_site: Site) -> None:
    site = sqlite_site
    # Thursday before Easter, 19:30 CEST: Good Friday, the weekend and Easter Monday do not count.
    ref = new_ticket(site, "2026-04-02T17:30:00+00:00")
    text = site.ok("sla", "explain", ref, "--now", "2026-04-02T17:40:00+00:00")
    assert "first response: target 1h of working time in calendar office" in text
    assert "mon-fri 08:00-20:00" in text and "holidays NL" in text
    assert "counted  Thu 2026-04-02 19:30 CEST - 20:00 CEST  30m" in text
    assert "counted  Tue 2026-04-07 08:00 CEST - 08:30 CEST  30m" in text
    assert "skipped  Fri 2026-04-03  holiday:" in text
    assert "skipped  Sat 2026-04-04  no working hours" in text
    assert "skipped  Mon 2026-04-06  holiday:" in text
    assert "due Tue 2026-04-07 08:30 CEST" in text
    data = json.loads(site.ok("sla", "explain", ref, "--json", "--now", "2026-04-02T17:40:00+00:00"))
    first = data["clocks"][0]
    assert first["name"] == "first_response" and first["due"] == "2026-04-07T06:30:00+00:00"
    assert first["used"] == "10m"


def test_report_sla_table_json_and_html(sqlite_site: Site) -> None:
    site = sqlite_site
    new_ticket(site, at(0), message_id="<r-1@customer.example>")                  # S3, answered in time
    change(site, 1, at(30), agent_reply)
    change(site, 1, at(90), set_status("resolved"))
    new_ticket(site, at(0), "VPN is down", "Nobody can work.", "<r-2@customer.example>")   # S1, breached
    tick(site, at(30))
    report = json.loads(site.ok("report", "sla", "--format", "json", "--now", at(30)))
    by_severity = {row["group"]: row for row in report["by_severity"]}
    assert by_severity["S3"]["first_response"] == {"met": 1, "missed": 0, "rate": 1.0}
    assert by_severity["S3"]["resolution"] == {"met": 1, "missed": 0, "rate": 1.0}
    assert by_severity["S3"]["median_first_response_seconds"] == 1800
    assert by_severity["S3"]["median_resolution_seconds"] == 5400
    assert by_severity["S1"]["first_response"]["missed"] == 1 and by_severity["S1"]["breaches"] == 1
    assert report["total"]["tickets"] == 2
    assert {row["group"] for row in report["by_tier"]} == {"L1", "L2"}
    assert [row["group"] for row in report["by_queue"]] == ["support"]

    table = site.ok("report", "sla", "--now", at(30))
    assert "by severity" in table and "by tier" in table and "by queue" in table
    assert "1/1 100%" in table and "0/1 0%" in table
    page = site.ok("report", "sla", "--format", "html", "--since", "2026-03-01", "--now", at(30))
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script" not in page
    later = json.loads(site.ok("report", "sla", "--format", "json", "--since", "2026-03-03", "--now", at(30)))
    assert later["total"]["tickets"] == 0


def test_report_sla_page_escapes_queue_names_and_takes_the_admins_template(sqlite_site: Site) -> None:
    site = sqlite_site
    queue = "<script>alert('q')</script>"                              # a queue name is the admin's text
    site.config.write_text(site.config.read_text().replace("queue: support", f'queue: "{queue}"'))
    new_ticket(site, at(0))
    report = json.loads(site.ok("report", "sla", "--format", "json", "--now", at(30)))
    assert [row["group"] for row in report["by_queue"]] == [queue]
    page = site.ok("report", "sla", "--format", "html", "--now", at(30))
    assert "<script" not in page
    assert "<td>&lt;script&gt;alert(&#39;q&#39;)&lt;/script&gt;</td>" in page
    # The admin's templates/report_sla.html comes first, and is autoescaped too.
    site.write("templates/report_sla.html", "<p>{{ sections[2].rows[0][0] }}</p>\n")
    assert site.ok("report", "sla", "--format", "html", "--now", at(30)) == \
        "<p>&lt;script&gt;alert(&#39;q&#39;)&lt;/script&gt;</p>\n"


def test_sweep_uses_the_next_deadline_index_and_touches_only_due_tickets(sqlite_site: Site) -> None:
    from sqlalchemy import text

    from mailtriage.app import build_app, load_config
    from mailtriage.clock import FixedClock
    from mailtriage.sla import sweep
    from mailtriage.store import sweeprows

    site = sqlite_site
    for number in range(5):
        new_ticket(site, at(number * 600), message_id=f"<s-{number}@customer.example>")
    app = build_app(load_config(site.config), FixedClock(T0))
    try:
        with app.store.engine.connect() as connection:
            compiled = sweeprows.due_query(T0, 200).compile(app.store.engine, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert "ix_tickets_next_deadline" in plan
        result = sweep.run_once(app, T0 + timedelta(minutes=48))
        assert (result.tickets, result.warnings) == (1, 1)
        result = sweep.run_once(app, T0 + timedelta(minutes=48), batch=1)
        assert result.tickets == 0
    finally:
        app.store.close()


def test_config_check_reports_an_unknown_tier_calendar(sqlite_site: Site) -> None:
    site = sqlite_site
    site.config.write_text(site.config.read_text().replace(
        "L2: {notify: [l2-team@example.test]}", "L2: {notify: [l2-team@example.test], calendar: ofice}"))
    code, _, err = site.cli("config", "check")
    assert code == 2 and "tiers.L2: no calendar named 'ofice'" in err and "mailtriage.yaml:" in err
