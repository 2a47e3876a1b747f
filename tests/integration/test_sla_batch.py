"""The SLA sweep's batch (sla/sweep.py): one ticket whose notice fails does
not cost the others of its batch theirs, nobody is told twice, and a notice
sent from a batch threads and is suppressed as one sent alone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from helpers import Site, eml

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)        # Monday, 10:00 in Amsterdam (S3: office hours)


def new_ticket(site: Site, minutes: int, message_id: str) -> int:
    path = site.dir / f"{minutes}.eml"
    path.write_bytes(eml("Printer on fire", "It is smoking.", message_id=message_id))
    [line] = site.ingest(path, now=(T0 + timedelta(minutes=minutes)).isoformat())
    ref, action = line.split()
    assert action == "new"
    return int(ref.split("-")[1])


def test_a_failing_ticket_leaves_its_batch_their_notices_once(site: Site) -> None:
    from mailtriage.app import build_app, load_config
    from mailtriage.clock import FixedClock
    from mailtriage.sla import sweep
    from mailtriage.store.schema import Event, OutboxRow, Suppression, Ticket

    numbers = [new_ticket(site, n, f"<b-{n}@customer.example>") for n in range(4)]
    bad, suppressed = numbers[1], numbers[2]
    now = T0 + timedelta(minutes=52)                         # every first-response warning (48m) has come
    app = build_app(load_config(site.config), FixedClock(now))
    try:
        with app.store.session() as session, session.begin():
            session.execute(update(Ticket).where(Ticket.id == bad).values(tier="L9"))     # no such tier: fails
            session.execute(update(Ticket).where(Ticket.id == suppressed).values(tier="L2"))
            session.add(Suppression(address="l2-team@example.test", reason="550 no such user", created_at=T0))
        result = sweep.run_once(app, now)
        assert (result.tickets, result.warnings, result.failed) == (4, 3, 1)
        with app.store.session() as session:
            rows = session.scalars(select(OutboxRow).where(OutboxRow.kind == "warning")
                                   .order_by(OutboxRow.ticket_id)).all()
            assert [row.ticket_id for row in rows] == [n for n in numbers if n != bad]
            by_ticket = {row.ticket_id: row for row in rows}
            assert by_ticket[suppressed].status == "suppressed"
            assert by_ticket[numbers[0]].recipients == ["l1-team@example.test"]
            data = by_ticket[numbers[3]].data
            assert b"In-Reply-To: <b-3@customer.example>" in data and b"References: <b-3@customer.example>" in data
            warned = session.scalars(select(Event.ticket_id).where(Event.type == "warning")).all()
            assert sorted(warned) == [n for n in numbers if n != bad]
            retry = session.scalar(select(Ticket.next_deadline).where(Ticket.id == bad))
            assert retry is not None and retry.replace(tzinfo=timezone.utc) == now + sweep.RETRY_AFTER
        again = sweep.run_once(app, now)
        assert again.tickets == 0                               # nothing twice; the failed one waits 5 minutes
        later = sweep.run_once(app, now + sweep.RETRY_AFTER)
        assert (later.tickets, later.warnings, later.failed) == (1, 0, 1)
    finally:
        app.store.close()
