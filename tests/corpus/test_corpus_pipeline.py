"""Every message of the shared corpus through the whole pipeline, in one site.

Bulk import (`process_many`, acknowledgements on, so composing mail for odd
senders is exercised too) on SQLite. No crash; every message stored byte
for byte; bounces ignored as bounces, everything else a ticket, a reply or a
duplicate; at most a handful quarantined, each with a reason. The outcome
counts are printed (`pytest -s`) and recorded as a property of the test.
"""

from __future__ import annotations

import collections
import csv
import hashlib
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from helpers import make_site, site_app
from mailtriage.mail import guards
from mailtriage import pipeline
from mailtriage.mail.parse import parse
from mailtriage.store.schema import RawMessage, Ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MAX_QUARANTINED = 3


def test_every_corpus_message_through_the_pipeline(corpus_dir: Path, tmp_path: Path, record_property) -> None:
    with (corpus_dir / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        paths = [row["path"] for row in csv.DictReader(handle)]
    messages = {path: (corpus_dir / path).read_bytes() for path in paths}
    app = site_app(make_site(tmp_path / "site"), T0)

    outcomes = dict(zip(paths, pipeline.process_many(app, messages.items(), app.clock.now, acknowledge=True)))

    counts = collections.Counter(outcome.action for outcome in outcomes.values())
    print("\ncorpus outcomes:", dict(sorted(counts.items())))
    record_property("corpus_outcomes", dict(counts))
    assert len(outcomes) == len(paths)
    for path, outcome in outcomes.items():
        if outcome.action == "duplicate":
            continue                               # the corpus holds the same mail more than once
        if guards.is_bounce(parse(messages[path])):
            assert outcome.action == "ignored:bounce", (path, outcome)
        elif not outcome.action.startswith("quarantined:"):
            assert outcome.action in ("new", "reply"), (path, outcome)
            assert outcome.ref is not None, (path, outcome)
    quarantined = {path: o.action for path, o in outcomes.items() if o.action.startswith("quarantined:")}
    assert len(quarantined) <= MAX_QUARANTINED, quarantined

    with app.store.session() as session:
        stored = {row.sha256: row for row in session.scalars(select(RawMessage))}
        tickets = len(list(session.scalars(select(Ticket.id))))
        by_digest = {row.sha256: row.data for row in stored.values()}
        for path, raw in messages.items():
            assert by_digest[hashlib.sha256(raw).hexdigest()] == raw, path     # raw bytes untouched
        assert all(row.state != "pending" for row in stored.values())
        assert all(row.reason for row in stored.values() if row.state == "quarantined")
    assert tickets == counts["new"]
    assert counts["ignored:bounce"] >= 15
