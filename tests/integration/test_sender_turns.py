"""SQLite: the sender is not starved by a writer that never pauses. An IMAP
burst stores batch after batch, each taking the write lock again within a
millisecond of its commit; the sender commits each relay's answer on its
own (exactly once), and without turns it got none in until the burst was
over, or failed with "database is locked" after busy_timeout."""

from __future__ import annotations

import threading

from sqlalchemy import text

from helpers import eml, make_site
from mailtriage.app import build_app, load_config
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.notify import outbox
from mailtriage.store import turns
from mailtriage.store.lock import begin_writing

NOW = parse_instant("2026-03-02T09:00:00+00:00")
LONGEST = 400                   # the writer's transactions, at most (about 20 s): then it stops anyway


def test_the_sender_gets_its_turns_while_a_batch_writer_keeps_writing(tmp_path):
    site = make_site(tmp_path / "site")
    for n in range(3):
        path = site.write(f"{n}.eml", "")
        path.write_bytes(eml(f"Printer {n} on fire", sender=f"c{n}@customer.example",
                             message_id=f"<turns-{n}@customer.example>"))
        assert site.ingest(path, now=NOW.isoformat())[0].endswith(" new")
    app = build_app(load_config(site.config), FixedClock(NOW))
    sender_done, writing = threading.Event(), threading.Event()
    transactions = []

    def batch_writer() -> None:
        """As the IMAP watcher in a burst: write, hold the lock a while, commit, again at once."""
        while not sender_done.is_set() and len(transactions) < LONGEST:
            with app.store.session() as session, turns.writing(session), session.begin():
                begin_writing(session)
                session.execute(text("UPDATE imap_state SET last_uid = last_uid"))
                writing.set()
                sender_done.wait(0.05)          # the batch's work, with the write lock held
            transactions.append(1)

    writer = threading.Thread(target=batch_writer)
    writer.start()
    try:
        assert writing.wait(10)
        result = outbox.run_once(app, NOW)
        finished_during = len(transactions)
        sender_done.set()
        writer.join(30)
        assert result.sent == 3
        # With turns: a claim and three answers, each after one of the writer's transactions (a few; 60 is
        # 3 s of them, for a slow machine). Without, the sender waits for SQLite's busy handler to hit a gap.
        assert finished_during <= 60, f"the sender got in only after {finished_during} of the writer's commits"
        assert len(list((site.dir / "outbox" / "new").iterdir())) == 3
    finally:
        sender_done.set()
        writer.join(30)
        app.store.close()
