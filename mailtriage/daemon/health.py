"""The daemon's health side, wired: the board its threads report to, the
metrics, the health job (health/monitor.py) and the HTTP listener.

    IMAP watchers ─ a pass worked / why not ─┐
    outbox (the Relay) ─ each try ───────────┼─► Board ─► health job every HEALTH_EVERY s ─► heartbeats, alerts
    SMTP listener ─ listening or not ────────┘     └─► /healthz, /metrics (uvicorn thread)
    sources ─ each message's Outcome ─► mailtriage_messages_total
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from mailtriage.app import App
from mailtriage.backoff import describe
from mailtriage.config.values import Settings
from mailtriage.errors import MailtriageError
from mailtriage.health import facts
from mailtriage.health.board import Board
from mailtriage.health.metrics import Metrics
from mailtriage.health.monitor import Monitor
from mailtriage.web import board as web_board
from mailtriage.web.app import build_app
from mailtriage.web.auth import session_secret
from mailtriage.web.server import HttpServer

log = logging.getLogger(__name__)

HEALTH_EVERY = 2.0              # seconds: how soon a change reaches the heartbeat rows, and alerts are decided


class Health:
    def __init__(self, app_ref: Callable[[], App]):
        self.app_ref = app_ref
        self.board = Board()
        self.metrics = Metrics(self.board, lambda: app_ref().store)
        self.monitor = Monitor(self.board, app_ref)
        self.http: HttpServer | None = None
        # The team lead's pages at /, on the running App (and its clock).
        self.pages = web_board.routes(app_ref)
        self.secret = session_secret()
        self.secure = False                     # the running listener's `http.secure_cookies`

    def now(self) -> datetime:
        return self.app_ref().clock.now()

    # ------------------------------------------------------------ what the threads report
    def mailbox(self, name: str) -> Callable[[BaseException | None], None]:
        def seen(exc: BaseException | None) -> None:
            if exc is None:
                self.board.succeeded(f"mailbox:{name}", self.now())
            else:
                self.board.failed(f"mailbox:{name}", describe(exc), self.now())
        return seen

    def relay(self, now: datetime, exc: BaseException | None) -> None:
        if exc is None:
            self.board.succeeded("relay", now)
        else:
            self.board.failed("relay", describe(exc), now)

    def listener(self, error: str | None) -> None:
        if error is None:
            self.board.succeeded("smtp_in", self.now())
        else:
            self.board.failed("smtp_in", error, self.now())

    # ------------------------------------------------------------ life cycle
    def start(self, settings: Settings) -> None:
        """At the daemon's start: the rows' states into the board; the HTTP listener
        (a busy port stops the start, as the SMTP listener's does)."""
        self.monitor.load(self.now())
        if settings.http is not None:
            self.http = self._serve(settings.http.listen, settings.http.secure_cookies)

    def tick(self, now: datetime, dead_mailboxes: list[str]) -> int:
        """The health job: watchers given up are failing; then heartbeats and alerts
        (returns how many alert mails were queued)."""
        for name in dead_mailboxes:
            self.board.failed(f"mailbox:{name}", "the watcher stopped (it crashed repeatedly, or the OAuth2 "
                              "provider refused the login); SIGHUP starts it again", now)
        return self.monitor.run_once(now)

    def reload(self, settings: Settings) -> None:
        """SIGHUP: the components of the new config; a changed `http.listen` (or
        `http.secure_cookies`) replaces the listener once the new one listens
        (else the old one stays)."""
        self.board.keep(facts.components(settings))
        wanted = settings.http.listen if settings.http is not None else None
        running = self.http.listen if self.http is not None else None
        secure = settings.http is not None and settings.http.secure_cookies
        if wanted == running and (wanted is None or secure == self.secure):
            return
        if wanted is None:
            self._stop_http()
            return
        if running is not None and _same_port(running, wanted):
            self._stop_http()
        try:
            new = self._serve(wanted, secure)
        except MailtriageError as exc:
            log.error("SIGHUP: %s; %s. The next SIGHUP tries again", exc,
                      f"still serving HTTP on {running}" if self.http is not None else "NOT SERVING HTTP")
            if self.http is None and running is not None:
                self.http = self._restarted(running, self.secure)
            return
        self._stop_http()
        self.http = new

    def stop(self) -> None:
        self._stop_http()

    def _serve(self, listen: str, secure: bool) -> HttpServer:
        """One session secret per process: a listener restarted by SIGHUP keeps the logins."""
        server = HttpServer(build_app(self.board, self.metrics.registry, board_routes=self.pages,
                                      board_middleware=web_board.middleware(self.secret, secure)), listen)
        server.start()
        self.secure = secure
        return server

    def _restarted(self, listen: str, secure: bool) -> HttpServer | None:
        try:
            return self._serve(listen, secure)
        except MailtriageError:
            return None

    def _stop_http(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None


def _same_port(a: str, b: str) -> bool:
    return a.rpartition(":")[2] == b.rpartition(":")[2]
