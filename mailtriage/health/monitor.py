"""The daemon's health job (`run_once(now)`, every few seconds): the board's
states into the heartbeat rows, the OAuth2 token files and the database
checked, and the alerts decided and queued.

    board ─► alerts due (state.alert_due) ─► outbox ┐ one transaction: an alert is queued
          ─► rows that changed, or a success older than REFRESH ─► heartbeats ┘ and recorded together

Writes stay cheap: a row is written when its facts change, and a working
component's success time at most every REFRESH seconds, so a burst of mail
adds no write at all (the sources only touch the board in memory). A
database that fails is the `database` component: it is known in memory
(`/healthz`, the alert once the database takes writes again) and written
when it is back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailtriage.app import App
from mailtriage.backoff import describe
from mailtriage.config.load import read_token_file
from mailtriage.config.values import Settings, oauth2_accounts
from mailtriage.errors import ConfigError
from mailtriage.health import facts
from mailtriage.health.board import Board
from mailtriage.health.state import Action, State
from mailtriage.notify import alertmail, outbox
from mailtriage.store.schema import Heartbeat

log = logging.getLogger(__name__)

REFRESH = timedelta(seconds=30)     # a working component's row is rewritten at most this often


class Monitor:
    def __init__(self, board: Board, app_ref: Callable[[], App]):
        self.board, self.app_ref = board, app_ref
        self.written: dict[str, tuple[State, datetime]] = {}     # what each row holds, and since when
        self.writes = 0                                           # rows written (bench/daemon.py reports it)

    def load(self, now: datetime) -> None:
        """At start: what the rows kept (failing since, alert sent) is where the board starts."""
        names = facts.components(self.app_ref().settings)
        try:
            with self.app_ref().store.session() as session:
                rows = facts.heartbeats(session)
        except SQLAlchemyError as exc:
            self.board.failed("database", describe(exc), now)
            rows = {}
        for name in names:
            if name in rows:
                self.board.put(rows[name])
                self.written[name] = (rows[name], now)
        self.board.keep(names)

    def run_once(self, now: datetime) -> int:
        """Returns how many alert mails it queued (the daemon sends them at once)."""
        app = self.app_ref()
        self._tokens(app.settings, now)
        try:
            with app.store.session() as session, session.begin():
                session.execute(select(1))
                alerted = self._alerts(session, app, now) if app.settings.alerts is not None else {}
                written = self._write(session, {**self.board.snapshot(), **alerted}, now)
        except SQLAlchemyError as exc:
            self.board.failed("database", describe(exc), now)
            return 0
        for state in alerted.values():             # queued and recorded: the board knows it too
            self.board.alerted(state.name, state.alerted_at)
        self.written.update(written)
        self.writes += len(written)
        self.board.succeeded("database", now)
        return len(alerted)

    def _tokens(self, settings: Settings, now: datetime) -> None:
        """An OAuth2 token is failing when its file says the provider refused it
        (whichever process was refused wrote that), or when the file is unusable."""
        for account in oauth2_accounts(settings):
            name = f"oauth2:{account.name}"
            try:
                held = read_token_file(settings.path(account.oauth2.token_file), account.name)
            except ConfigError as exc:
                self.board.failed(name, exc.problems[0].message, now)
                continue
            if held.get("failing"):
                detail = held.get("error_description") or ""
                self.board.failed(name, f"{held['failing']}{': ' + detail if detail else ''}", now)
            else:
                self.board.succeeded(name, now)

    def _alerts(self, session: Session, app: App, now: datetime) -> dict[str, State]:
        """Queue each alert (and recovery) that is due; returns the states as they are then."""
        settings = app.settings
        assert settings.alerts is not None
        done: dict[str, State] = {}
        for name, state in self.board.snapshot().items():
            action: Action | None = state.alert_due(now, settings.alerts.after)
            if action is None:
                continue
            sent = alertmail.alert(settings, app.config.templates, state, action, now)
            outbox.enqueue(session, sent.mail, kind=sent.kind, now=now, ticket_id=None, message_id=sent.message_id)
            since = state.failing_since.isoformat(timespec="seconds") if state.failing_since else "?"
            log.warning("alert: %s %s; mail to %s queued", name,
                        f"has been failing since {since}" if action == "alert" else "works again",
                        ", ".join(settings.alerts.to))
            done[name] = state.alerted(action, now)
        return done

    def _write(self, session: Session, states: dict[str, State], now: datetime) -> dict[str, tuple[State, datetime]]:
        written = {}
        for name, state in states.items():
            if state.ok is None:
                continue                                    # nothing known yet: nothing to keep
            before = self.written.get(name)
            if before is not None and before[0].same_facts(state) and (
                    before[0] == state or now - before[1] < REFRESH):
                continue
            _upsert(session, state, now)
            written[name] = (state, now)
        return written


def _upsert(session: Session, state: State, now: datetime) -> None:
    """One statement, also when several daemons write the same row (PostgreSQL)."""
    values: dict[str, Any] = {"component": state.name, "ok": bool(state.ok), "last_success_at": state.last_success_at,
                              "last_error_at": state.last_error_at, "last_error": state.last_error,
                              "failing_since": state.failing_since, "alerted_at": state.alerted_at,
                              "updated_at": now}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Heartbeat).values(**values)
    session.execute(statement.on_conflict_do_update(
        index_elements=[Heartbeat.component], set_={k: v for k, v in values.items() if k != "component"}))
