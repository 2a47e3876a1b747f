"""Mail we send about a long ticket replies to its newest message."""

from __future__ import annotations

from datetime import datetime, timezone

from helpers import eml, site_app
from mailtriage import pipeline
from mailtriage.store import queries

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def test_conversation_ids_keep_the_first_and_the_newest_messages(site):
    app = site_app(site, T0)
    previous = None
    for i in range(30):
        raw = eml("Re: Printer" if i else "Printer", f"Message {i}", message_id=f"<long-{i}@customer.example>",
                  in_reply_to=previous, references=previous)
        outcome = pipeline.process(app, raw, T0, acknowledge=False)
        assert outcome.action == ("new" if i == 0 else "reply")
        previous = f"<long-{i}@customer.example>"
    with app.store.session() as session:
        ids = queries.conversation_ids(session, int(outcome.ref.split("-")[1]))
    assert len(ids) == 20
    assert ids[0] == "<long-0@customer.example>"          # the start of the conversation
    assert ids[-1] == "<long-29@customer.example>"        # In-Reply-To: the newest message
    assert ids[1:] == [f"<long-{i}@customer.example>" for i in range(11, 30)]
