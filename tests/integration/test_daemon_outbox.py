"""The outbox sender's claim: a row is taken by one sender only, and one left
mid-send is taken back after its lease; states are typed values stored as the
strings they always were (on both databases)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from helpers import eml, make_site
from mailtriage.app import build_app, load_config
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.model import OutboxStatus, RawState
from mailtriage.notify import outbox
from mailtriage.store.schema import OutboxRow, RawMessage

NOW = parse_instant("2026-03-02T09:00:00+00:00")


def test_a_row_is_claimed_once_and_taken_back_after_its_lease(tmp_path, database_url):
    site = make_site(tmp_path / "site", database=database_url)
    site.write("a.eml", "").write_bytes(eml("Printer on fire", message_id="<claim@customer.example>"))
    assert site.ingest(site.dir / "a.eml", now=NOW.isoformat())[0].endswith(" new")
    app = build_app(load_config(site.config), FixedClock(NOW))
    try:
        retry = outbox.Retry(lease=timedelta(minutes=5))
        first = outbox.claim(app.store.sessions, NOW, retry)
        assert first is not None and first.attempts == 1 and not first.resumed
        assert outbox.claim(app.store.sessions, NOW, retry) is None            # taken: nobody else gets it
        assert outbox.claim(app.store.sessions, NOW + timedelta(minutes=4), retry) is None
        with app.store.session() as session:
            assert outbox.next_due(session) == NOW + timedelta(minutes=5)
        again = outbox.claim(app.store.sessions, NOW + timedelta(minutes=6), retry)   # the sender died
        assert again is not None and again.id == first.id and again.resumed and again.attempts == 2
        with app.store.session() as session:
            row = session.get(OutboxRow, first.id)
            assert (row.status, row.message_id) == ("sending", first.message_id)
    finally:
        app.store.close()


def test_states_are_typed_in_python_and_the_same_strings_in_the_database(tmp_path, database_url):
    """Scripts and dashboards that read the tables keep seeing `pending`, `processed` …"""
    site = make_site(tmp_path / "site", database=database_url)
    site.write("a.eml", "").write_bytes(eml("Printer on fire", message_id="<typed@customer.example>"))
    assert site.ingest(site.dir / "a.eml", now=NOW.isoformat())[0].endswith(" new")
    app = build_app(load_config(site.config), FixedClock(NOW))
    try:
        with app.store.session() as session:
            assert session.execute(text("SELECT status FROM outbox")).scalars().all() == ["pending"]
            assert session.execute(text("SELECT state FROM raw_messages")).scalars().all() == ["processed"]
            [row] = session.scalars(select(OutboxRow)).all()
            [raw] = session.scalars(select(RawMessage)).all()
            assert row.status is OutboxStatus.PENDING and raw.state is RawState.PROCESSED
            raw.state = "bogus"
            with pytest.raises(StatementError, match="'bogus' is not a valid RawState"):
                session.flush()
    finally:
        app.store.close()


def test_a_flush_reports_progress_before_each_mail(tmp_path):
    """What the daemon pings systemd's watchdog from: a flush of many slow mails
    is one long job, and a daemon killed mid-flush would send them again."""
    site = make_site(tmp_path / "site")
    for n in (1, 2):
        site.write(f"{n}.eml", "").write_bytes(eml(f"Printer {n} on fire", message_id=f"<p{n}@customer.example>"))
        site.ingest(site.dir / f"{n}.eml", now=NOW.isoformat())
    app = build_app(load_config(site.config), FixedClock(NOW))
    sent = site.dir / "outbox" / "new"
    seen: list[int] = []
    try:
        with app.store.session() as session:
            queued = len(session.scalars(select(OutboxRow)).all())
        result = outbox.run_once(app, NOW, progress=lambda: seen.append(len(list(sent.glob("*")))
                                                                         if sent.exists() else 0))
    finally:
        app.store.close()
    assert queued >= 2 and result.total == queued
    assert seen == list(range(queued + 1))          # before each mail, and before the look that finds none
