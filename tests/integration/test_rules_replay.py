"""`mailtriage rules replay`: what a changed rules file would do to the stored
tickets, read through a connection the database itself keeps read-only.

The big test imports a 2,000-message mailbox (as history, with `mailtriage
import`), replays it through the example rules plus one new rule, and checks
the diff against a plain keyword search over the generated messages: exactly
the tickets whose first customer message has the keyword change, and the
database file is byte for byte the same afterwards."""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from helpers import Site, eml, make_site
from mailtriage.store.readonly import open_readonly

NOW = "2026-03-20T12:00:00+00:00"
KEYWORD = re.compile(r"\btoner\b", re.IGNORECASE)          # the test's own reading of the new rule
TONER_RULE = """\
rules:
  - name: toner
    when: {body: [toner]}
    set: {queue: printing, tags: [toner]}
"""


def mailbox(folder: Path, count: int, seed: int = 16) -> dict[str, str]:
    """A Maildir of `count` messages in threads of 1 to 4, files in shuffled order
    (so a reply often arrives before its original and opens the ticket).
    Returns Message-ID → body. A fifth of the originals mention toner in their
    body; replies never do, except now and then in a thread that did not; some
    subjects mention it (the rule reads bodies only)."""
    rng = random.Random(seed)
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    subjects = ["VPN is down", "Question about my invoice", "Printer", "Toner order", "Laptop", "Access"]
    bodies: dict[str, str] = {}
    files: list[bytes] = []
    thread = 0
    while len(files) < count:
        toner = rng.random() < 0.2
        subject, chain = rng.choice(subjects), []
        for position in range(min(rng.randint(1, 4), count - len(files))):
            if position == 0:
                body = rng.choice(["The Toner is empty again.", "Out of toner on floor 2.", "TONER low"]) \
                    if toner else rng.choice(["It does not work.", "Nobody can work.", "Please help."])
            else:
                body = "Also: we need toner." if not toner and rng.random() < 0.1 else "Any news?"
            mid = f"<t{thread}.m{position}@client{thread % 17}.example>"
            bodies[mid] = body
            files.append(eml(("Re: " if position else "") + subject, body, message_id=mid,
                             sender=f"user{thread % 101}@client{thread % 17}.example",
                             in_reply_to=chain[-1] if chain else None, references=" ".join(chain) or None,
                             date=datetime(2026, 3, 2, tzinfo=timezone.utc) + timedelta(minutes=len(files))))
            chain.append(mid)
        thread += 1
    rng.shuffle(files)
    for number, raw in enumerate(files):
        (folder / "cur" / f"{number:05d}.replay:2,S").write_bytes(raw)
    return bodies


def mailtriage(site: Site, *args: str) -> subprocess.CompletedProcess:
    """The command as an admin runs it: its own process, which closes the database when it ends."""
    result = subprocess.run([sys.executable, "-m", "mailtriage", "--config", str(site.config), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def first_messages(database: Path) -> dict[int, str]:
    """Ticket number → the Message-ID of its first customer message, read by the test itself."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT ticket_id, message_id FROM messages WHERE kind = 'customer' ORDER BY id")
        first: dict[int, str] = {}
        for ticket, message_id in rows:
            first.setdefault(ticket, message_id)
    return first


def fingerprint(database: Path) -> tuple[str, int]:
    """The database file's sha256, and how many bytes its WAL holds (a write would land there first)."""
    wal = database.with_name(database.name + "-wal")
    return hashlib.sha256(database.read_bytes()).hexdigest(), wal.stat().st_size if wal.exists() else 0


def test_replay_names_exactly_the_tickets_the_changed_rule_matches(tmp_path):
    site = make_site(tmp_path / "site")
    bodies = mailbox(tmp_path / "Maildir", 2_000)
    assert "2000 messages: " in mailtriage(site, "--now", NOW, "import", str(tmp_path / "Maildir"),
                                           "--no-progress").stdout
    candidate = site.dir / "candidate.yaml"
    example = (site.dir / "rules.yaml").read_text()
    candidate.write_text(example.replace("rules:\n", TONER_RULE, 1))
    database = site.dir / "mailtriage.db"
    first = first_messages(database)
    expected = {f"MT-{ticket}" for ticket, mid in first.items() if KEYWORD.search(bodies[mid])}
    assert 100 < len(expected) < len(first)
    # The test's mailbox does what it says: some tickets opened by a reply, some replies mention toner.
    assert any(".m0@" not in mid for mid in first.values())
    assert any(KEYWORD.search(bodies[mid]) and ".m0@" not in mid for mid in first.values())
    before = fingerprint(database)

    data = json.loads(mailtriage(site, "rules", "replay", "--rules", str(candidate), "--json").stdout)

    assert fingerprint(database) == before
    assert data["messages"] == len(first)
    assert {change["ref"] for change in data["changed"]} == expected
    for change in data["changed"]:                               # queue and tags, nothing else
        assert change["rule"] == "toner"
        if change["field"] == "queue":
            assert (change["old"], change["new"]) in {("support", "printing"), ("billing", "printing")}
        else:
            assert change["field"] == "tags" and change["new"] == sorted(change["old"] + ["toner"])
    assert len(data["changed"]) == 2 * len(expected)
    assert data["by_rule"] == {"toner": len(expected)}

    in_force = site.dir / "rules.yaml"
    same = mailtriage(site, "rules", "replay", "--rules", str(in_force)).stdout
    assert same == f"{len(first)} first message(s) replayed through {in_force}: 0 ticket(s) would change\n"
    assert fingerprint(database) == before
    # The fingerprint does see a write: one more message, and it changes.
    (site.dir / "one.eml").write_bytes(eml("Toner", "Out of toner.", message_id="<one@client.example>"))
    mailtriage(site, "ingest", str(site.dir / "one.eml"))
    assert fingerprint(database) != before


def test_replay_prints_a_line_per_change_and_honours_since(site):
    site.ingest(site.write("a.eml", eml("Printer", "Out of toner.", message_id="<a@c.example>").decode()),
                now="2026-03-01T09:00:00+00:00")
    site.ingest(site.write("b.eml", eml("VPN is down", "The toner too.", message_id="<b@c.example>").decode()),
                now="2026-03-05T09:00:00+00:00")
    site.ingest(site.write("c.eml", eml("Laptop", "New one please.", message_id="<c@c.example>").decode()),
                now="2026-03-06T09:00:00+00:00")
    candidate = site.write("candidate.yaml", TONER_RULE + "default: {severity: S3, tier: L1, queue: support}\n")
    code, out, err = site.cli("rules", "replay", "--rules", str(candidate))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "MT-1 queue support -> printing (toner)",
        "MT-1 tags [] -> [toner] (toner)",
        "MT-2 severity S1 -> S3 (default)",              # the candidate has no outage rule
        "MT-2 queue support -> printing (toner)",
        "MT-2 tags [outage] -> [toner] (toner)",
        f"3 first message(s) replayed through {candidate}: 2 ticket(s) would change (5 field(s)); "
        "tickets per rule: toner 2, default 1",
    ]
    data = json.loads(site.ok("rules", "replay", "--rules", str(candidate), "--json", "--since", "2026-03-03"))
    assert data == {"messages": 2, "by_rule": {"toner": 1, "default": 1}, "changed": [
        {"ref": "MT-2", "field": "severity", "old": "S1", "new": "S3", "rule": "default"},
        {"ref": "MT-2", "field": "queue", "old": "support", "new": "printing", "rule": "toner"},
        {"ref": "MT-2", "field": "tags", "old": ["outage"], "new": ["toner"], "rule": "toner"}]}


def test_the_replay_connection_cannot_write(site):
    site.ingest(site.write("a.eml", eml("Printer", "Out of toner.").decode()), now=NOW)
    url = site.database_url()
    store = open_readonly(url)
    try:
        with store.session() as session:
            assert session.execute(text("SELECT count(*) FROM tickets")).scalar() == 1
        with pytest.raises(DBAPIError, match="(?i)read-?only"), store.session() as session:
            session.execute(text("UPDATE tickets SET severity = 'S1'"))
            session.commit()
    finally:
        store.close()
    assert site.ticket("MT-1")["severity"] == "S3"


def test_replay_refuses_a_database_that_is_not_there(tmp_path):
    site = make_site(tmp_path / "site")
    site.write("candidate.yaml", TONER_RULE)
    code, out, err = site.cli("rules", "replay", "--rules", str(site.dir / "candidate.yaml"))
    assert (code, out) == (2, "")
    assert err == f"mailtriage: {site.dir / 'mailtriage.db'}: no such database file\n"
    assert not (site.dir / "mailtriage.db").exists()              # not created either
