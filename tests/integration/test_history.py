"""History: a team's existing mail taken in on the first day (tickets.history).

`import` without `--acknowledge` dates tickets by the mail, sends nothing,
and the SLA sweep never announces what fell before the import; live mail on
an imported ticket revives it."""

from __future__ import annotations

import json
import os
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from helpers import eml, make_site

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)
YEAR_AGO = NOW - timedelta(days=365)


def iso(at: datetime) -> str:
    return at.isoformat()


def write_history(root: Path, count: int, seed: int = 7) -> dict[str, datetime]:
    """A Maildir of `count` messages of the past year in threads of 1 to 4,
    the files in shuffled order; returns each Message-ID's Date."""
    rng = random.Random(seed)
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    dates: dict[str, datetime] = {}
    files: list[tuple[str, bytes]] = []
    thread = 0
    while len(files) < count:
        chain: list[str] = []
        start = YEAR_AGO + timedelta(minutes=rng.randrange(0, 360 * 24 * 60))
        for position in range(min(rng.randint(1, 4), count - len(files))):
            mid = f"<h{thread}.{position}@customer{thread % 50}.example>"
            when = start + timedelta(hours=position * 5)
            raw = eml(("Re: " if position else "") + f"Question {thread}", f"Message {position} of {thread}",
                      sender=f"user{thread}@customer{thread % 50}.example", message_id=mid,
                      in_reply_to=chain[-1] if chain else None, references=" ".join(chain) or None, date=when)
            delivered = int((when + timedelta(seconds=30)).timestamp())
            files.append((f"{delivered}.M{len(files)}P1.mx:2,S", raw))
            dates[mid] = when
            chain.append(mid)
        thread += 1
    rng.shuffle(files)
    for name, raw in files:
        (root / "cur" / name).write_bytes(raw)
    return dates


def outbox_rows(site) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(site.ok("outbox", "list", "--json"))


def test_a_year_of_history_is_imported_quietly_and_stays_quiet(tmp_path):
    site = make_site(tmp_path / "site")
    dates = write_history(tmp_path / "Maildir", 2000)
    site.ok("import", str(tmp_path / "Maildir"), now=iso(NOW))
    assert outbox_rows(site) == []

    for later in (timedelta(0), timedelta(hours=1), timedelta(days=3), timedelta(days=40), timedelta(days=400)):
        site.ok("sla", "tick", now=iso(NOW + later))
        assert outbox_rows(site) == [], later
    tickets = site.tickets()
    assert len(tickets) == len({mid.split(".")[0] for mid in dates})         # one ticket per thread
    for ticket in random.Random(1).sample(tickets, 25):
        data = site.ticket(ticket["ref"])
        first = min(dates[m["message_id"]] for m in data["messages"])
        assert datetime.fromisoformat(data["created_at"]) == first, ticket["ref"]
        history = [e for e in data["events"] if e["type"] == "sla-history"]
        assert history, "the missed targets are on record"
        assert not [e for e in data["events"] if e["type"] in ("warning", "escalated", "acknowledged")]

    report = json.loads(site.ok("report", "sla", "--format", "json", now=iso(NOW + timedelta(days=400))))
    assert report["total"]["breaches"] == 0 and report["total"]["history"] == len(tickets)


def test_live_mail_on_an_imported_ticket_is_acknowledged_and_its_clocks_start(tmp_path):
    site = make_site(tmp_path / "site")
    maildir = tmp_path / "Maildir"
    write_history(maildir, 3, seed=3)
    site.ok("import", str(maildir), now=iso(NOW))
    [ticket] = [t for t in site.tickets() if t["subject"] == "Question 0"]
    old = site.ticket(ticket["ref"])
    requester, first = old["requester"], old["messages"][0]["message_id"]

    reply = tmp_path / "reply.eml"
    reply.write_bytes(eml("Re: Question 0", "It is broken again.", sender=requester,
                          message_id="<live-1@customer0.example>", in_reply_to=first, references=first,
                          date=NOW + timedelta(hours=2)))
    [line] = site.ingest(reply, now=iso(NOW + timedelta(hours=2)))
    assert line == f"{ticket['ref']} reply"
    data = site.ticket(ticket["ref"])
    assert [e["type"] for e in data["events"]].count("revived") == 1
    assert [row["kind"] for row in outbox_rows(site)] == ["acknowledgement"]
    assert datetime.fromisoformat(data["first_response_due"]) > NOW + timedelta(hours=2)   # live clocks
    assert data["first_responded_at"] is None and data["sla_state"] == "ok"

    site.ok("sla", "tick", now=iso(NOW + timedelta(days=30)))           # and now they are announced
    kinds = {row["kind"] for row in outbox_rows(site)}
    assert kinds & {"warning", "escalation"}, kinds


def test_a_missing_malformed_or_future_date_falls_back_to_the_delivery_time(tmp_path):
    site = make_site(tmp_path / "site")
    maildir = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    delivered = NOW - timedelta(days=20)
    cases = {
        "missing": eml("No date", message_id="<d1@customer.example>", sender="a@one.example"),
        "malformed": eml("Bad date", message_id="<d2@customer.example>", sender="b@two.example"),
        "future": eml("Future date", message_id="<d3@customer.example>", sender="c@three.example",
                      date=NOW + timedelta(days=300)),
    }
    cases["missing"] = b"\n".join(line for line in cases["missing"].split(b"\n") if not line.startswith(b"Date:"))
    cases["malformed"] = cases["malformed"].replace(b"Date: ", b"Date: the day after tomorrow, ", 1)
    for index, raw in enumerate(cases.values()):
        (maildir / "cur" / f"{int(delivered.timestamp()) + index}.M{index}P1.mx:2,S").write_bytes(raw)
    site.ok("import", str(maildir), now=iso(NOW))
    created = sorted(datetime.fromisoformat(t["created_at"]) for t in site.tickets())
    assert created == [delivered + timedelta(seconds=i) for i in range(3)]


def test_an_eml_folder_without_dates_is_dated_by_the_files(tmp_path):
    site = make_site(tmp_path / "site")
    folder = tmp_path / "eml"
    folder.mkdir()
    raw = eml("Undated", message_id="<u1@customer.example>")
    path = folder / "one.eml"
    path.write_bytes(b"\n".join(line for line in raw.split(b"\n") if not line.startswith(b"Date:")))
    when = NOW - timedelta(days=3)
    os.utime(path, (when.timestamp(), when.timestamp()))
    site.ok("import", str(folder), now=iso(NOW))
    [ticket] = site.tickets()
    assert datetime.fromisoformat(ticket["created_at"]) == when
