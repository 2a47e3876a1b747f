"""A batch's threading lookups are answered from what it read before it
(store.hints), and stay right when the batch itself stores or moves messages."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event, select

from helpers import eml, make_site
from mailtriage.app import build_app, load_config
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.mail.parse import parse
from mailtriage.pipeline.spine import process
from mailtriage.store import queries
from mailtriage.store.hints import HINTS, BatchHints
from mailtriage.store.schema import Message
from mailtriage.store.surgery import move_thread

NOW = parse_instant("2026-03-02T12:00:00+00:00")


@contextmanager
def statements(engine):
    seen: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_lookups_come_from_the_hints_and_follow_a_split_made_in_the_batch(tmp_path):
    site = make_site(tmp_path / "site")
    app = build_app(load_config(site.config), FixedClock(NOW))
    a1 = eml("VPN down", "since nine", message_id="<a1@customer.example>")
    b1 = eml("Printer", "jammed", sender="bob@customer.example", message_id="<b1@customer.example>")
    a2 = eml("Re: VPN down", "still down", message_id="<a2@customer.example>",
             in_reply_to="<a1@customer.example>", references="<a1@customer.example>")
    for raw in (a1, b1, a2):
        process(app, raw, NOW)
    batch = [parse(eml("Re: VPN down", "and now?", message_id="<a3@customer.example>",
                       in_reply_to="<a2@customer.example>", references="<a1@customer.example> <a2@customer.example>")),
             parse(eml("Re: Printer", "fixed", sender="bob@customer.example", message_id="<b2@customer.example>",
                       in_reply_to="<b1@customer.example>", references="<b1@customer.example>"))]
    with app.store.session() as session, session.begin():
        session.info[HINTS] = BatchHints.load(session, batch)
        with statements(app.store.engine) as seen:
            assert queries.tickets_of_messages(session, ("<a1@customer.example>", "<b1@customer.example>",
                                                         "<a9@nowhere.example>")) == (
                ("<a1@customer.example>", 1), ("<b1@customer.example>", 2))
            assert queries.tickets_referring_to(session, "<a1@customer.example>") == (1,)
            assert queries.tickets_referring_to(session, "<b2@customer.example>") == ()
            queries.add_message(session, 2, batch[1], raw_id=None, key="k", direction="in", kind="customer", now=NOW)
            assert queries.tickets_referring_to(session, "<b1@customer.example>") == (2,)     # what it just wrote
            assert queries.tickets_of_messages(session, ("<b2@customer.example>",)) == (("<b2@customer.example>", 2),)
        assert [s for s in seen if s.lstrip().upper().startswith("SELECT")] == []      # none asked the database

        # #split moves <a2> (which refers to <a1>) to ticket 2: the lookups see the move.
        moving = list(session.scalars(select(Message).where(Message.message_id == "<a2@customer.example>")))
        move_thread(session, 2, moving, [])
        assert queries.tickets_referring_to(session, "<a1@customer.example>") == (2,)
        assert queries.tickets_of_messages(session, ("<a2@customer.example>",)) == (("<a2@customer.example>", 2),)
