"""No lookup grows with the number of tickets: every SELECT, UPDATE and
DELETE the pipeline, the outbox sender, the SLA sweep and the quarantine
retry run — captured from the real engine while real mail goes through
(new tickets, replies by References, by our own Message-ID and by subject
tag, a duplicate, a merge, an out-of-office, a bounce, an agent's command,
a bulk import) — is planned by SQLite as an index search, never a scan of
one of our tables."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import event, select, text

from helpers import dsn, eml, make_site, site_app
from mailtriage import pipeline
from mailtriage.notify import outbox
from mailtriage.sla import sweep
from mailtriage.store.schema import Base, OutboxRow

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
TRUSTED = "mx.example.test; dkim=pass header.d=example.test header.i=@example.test"
TABLES = set(Base.metadata.tables)


def mail(subject: str, mid: str, *, sender: str = "anna@customer.example", refs: tuple[str, ...] = (),
         headers: dict[str, str] | None = None, body: str = "It is smoking.") -> bytes:
    return eml(subject, body, sender=sender, message_id=mid, in_reply_to=refs[-1] if refs else None,
               references=" ".join(refs) or None, headers=headers)


def test_every_statement_of_the_mail_flow_is_an_index_search(tmp_path):
    site = make_site(tmp_path / "site", agent_notices="[new, reply]")
    app = site_app(site, NOW)
    seen: dict[str, tuple] = {}
    capturing = [True]

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if capturing[0] and statement.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE"):
            seen.setdefault(statement, parameters[0] if executemany else parameters)

    event.listen(app.store.engine, "before_cursor_execute", capture)
    try:
        def process(raw: bytes, minutes: int = 0) -> pipeline.Outcome:
            return pipeline.process(app, raw, NOW + timedelta(minutes=minutes))

        assert process(mail("Printer on fire", "<m1@customer.example>")).action == "new"
        assert process(mail("Re: Printer on fire", "<m2@customer.example>",
                            refs=("<m1@customer.example>",)), 1).action == "reply"
        assert process(mail("Printer on fire", "<m1@customer.example>",
                            headers={"X-Copy": "second mailbox"}), 2).action == "duplicate"
        capturing[0] = False                 # the test's own lookup
        with app.store.session() as session:
            ack = session.scalar(select(OutboxRow.message_id).where(OutboxRow.kind == "acknowledgement"))
        capturing[0] = True
        assert process(mail("Re: ack", "<m3@customer.example>", refs=(ack,)), 3).action == "reply"
        assert process(mail("[MT-1] one more thing", "<m4@customer.example>"), 4).action == "reply"
        assert process(mail("Scanner jammed", "<m5@customer.example>", sender="bob@customer.example"),
                       5).action == "new"
        merged = process(mail("Re: both", "<m6@customer.example>",
                              refs=("<m1@customer.example>", "<m5@customer.example>")), 6)
        assert merged.action == "reply"
        assert process(mail("Out of office", "<m7@customer.example>", refs=("<m1@customer.example>",),
                            headers={"Auto-Submitted": "auto-replied"}), 7).action.startswith(("reply", "ignored"))
        assert process(dsn(ack, "anna@customer.example"), 8).action == "ignored:bounce"
        agent = mail("Re: [MT-1] Printer on fire", "<a1@example.test>", sender="Alice <alice@example.test>",
                     refs=("<m1@customer.example>",), body="#status pending\n\nWe are on it.",
                     headers={"Authentication-Results": TRUSTED})
        assert process(agent, 9).action == "reply"
        outbox.run_once(app, NOW + timedelta(minutes=10))
        sweep.run_once(app, NOW + timedelta(days=3))
        pipeline.retry_quarantined(app, NOW + timedelta(days=3))
        imported = list(pipeline.process_many(app, [
            ("maildir:1", mail("Mouse broken", "<i1@customer.example>", sender="cara@customer.example")),
            ("maildir:2", mail("Re: Mouse broken", "<i2@customer.example>", sender="cara@customer.example",
                               refs=("<i1@customer.example>",))),
        ], lambda: NOW + timedelta(days=3)))
        assert [o.action for o in imported] == ["new", "reply"]
    finally:
        event.remove(app.store.engine, "before_cursor_execute", capture)

    scans = []
    with app.store.engine.connect() as connection:
        for statement, parameters in seen.items():
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            for row in plan:
                found = re.match(r"SCAN (\w+)", str(row[-1]))
                if found and found.group(1) in TABLES:
                    scans.append(f"{row[-1]}\n    in: {' '.join(statement.split())[:300]}")
    app.store.close()
    assert len(seen) > 30, "the scenario ran fewer statements than it should"
    assert not scans, "full scans:\n" + "\n".join(scans)
