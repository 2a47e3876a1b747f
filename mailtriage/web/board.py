"""The board: the team lead's read-only web pages, for the daemon's HTTP listener.

    /                 open tickets by queue × severity × tier, the SLA board
                      (breached, due within the hour), the latest activity
    /tickets          the tickets a count stands for (?queue=&severity=&tier=&status=)
    /tickets/{ref}    one ticket: its messages and events
    /report           `report sla` as a page (sla/report.py's figures and chart)
    /login, /logout   only with `http.users_file` (web/auth.py)

`routes(current)` and `middleware()` are what the listener mounts (web/app.py
adds /metrics and /healthz, which need no login). Pages are Jinja2 templates
in `templates/board/`, through the config's templates (an admin may restyle
them in the `templates:` folder), autoescaped: customer-written subjects and
bodies are text, never markup. Each response carries a Content-Security-Policy
that lets only its own inline script (by nonce) run: the few lines that show
deadlines in the viewer's time zone. Reads only: the one POSTs are the login
and the logout, which touch nothing but the session.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Protocol
from zoneinfo import ZoneInfo

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from mailtriage.clock import Clock
from mailtriage.config.loaded import Config
from mailtriage.config.values import Settings
from mailtriage.errors import ConfigError
from mailtriage.model import Severity, Status, Tier
from mailtriage.sla.durations import format_duration
from mailtriage.sla.report import page_context
from mailtriage.store import Store
from mailtriage.web import auth, reads
from mailtriage.web.throttle import Guard
from mailtriage.web.users import users_path

REFRESH = 60                # seconds: a wall screen stays current without anyone touching it
CHOICES = {"status": [s.value for s in Status], "severity": [s.value for s in Severity],
           "tier": [t.value for t in Tier]}


class App(Protocol):
    """What the board needs of the running App (the wiring module is not imported here)."""

    @property
    def config(self) -> Config: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def store(self) -> Store: ...

    @property
    def settings(self) -> Settings: ...


def routes(current: Callable[[], App], now: Callable[[], datetime] | None = None,
           guard: Guard | None = None) -> list[Route]:
    """The board's routes. `current()`: the running App (a SIGHUP may swap its
    config); `now()`: the board's clock, by default the App's; `guard`: the
    login limits (web/throttle.py), by default its defaults."""
    board = Board(current, now or (lambda: current().clock.now()), guard)
    return [Route("/", board.overview, name="board"),
            Route("/tickets", board.listing, name="tickets"),
            Route("/tickets/{ref}", board.ticket, name="ticket"),
            Route("/report", board.report, name="report"),
            Route("/login", board.login_form, methods=["GET"], name="login"),
            Route("/login", board.login, methods=["POST"]),
            Route("/logout", board.logout, methods=["POST"], name="logout")]


def middleware(secret: str | None = None, secure: bool = False) -> list[Middleware]:
    """The session cookie (secret: `$MAILTRIAGE_SESSION_SECRET`, else random per process;
    `secure`: HTTPS only, `http.secure_cookies`)."""
    return [auth.session_middleware(secret, secure)]


class Board:
    def __init__(self, current: Callable[[], App], now: Callable[[], datetime], guard: Guard | None = None):
        self.current = current
        self.now = now
        self.gate = auth.Gate(self._users_file, guard)

    def _users_file(self) -> Path | None:
        return users_path(self.current().settings)

    # -- pages --------------------------------------------------------------
    def overview(self, request: Request) -> Response:
        return self._guarded(request, "overview", self._overview)

    def listing(self, request: Request) -> Response:
        return self._guarded(request, "tickets", self._listing)

    def ticket(self, request: Request) -> Response:
        return self._guarded(request, "ticket", self._ticket)

    def report(self, request: Request) -> Response:
        return self._guarded(request, "report", self._report)

    def _overview(self, request: Request, app: App, now: datetime) -> dict[str, Any] | None:
        with app.store.session() as session:
            breached, soon = reads.sla_board(session, app.config, now)
            return {"counts": reads.counts(session), "breached": breached, "soon": soon,
                    "activity": reads.activity(session, app.settings.ticket_prefix),
                    "severities": CHOICES["severity"], "tiers": CHOICES["tier"], "refresh": REFRESH}

    def _listing(self, request: Request, app: App, now: datetime) -> dict[str, Any] | None:
        filters = {key: request.query_params.get(key, "") for key in reads.FILTERS}
        for key, valid in CHOICES.items():
            if filters[key] and filters[key] not in valid:
                filters[key] = "\x00"          # matches nothing, as a typo should
        with app.store.session() as session:
            found = reads.tickets(session, app.settings.ticket_prefix, filters)
        return {"tickets": found, "filters": {k: v for k, v in filters.items() if v and v != "\x00"}}

    def _ticket(self, request: Request, app: App, now: datetime) -> dict[str, Any] | None:
        with app.store.session() as session:
            found = reads.ticket(session, app.config, request.path_params["ref"], now)
        return None if found is None else {"ticket": found}

    def _report(self, request: Request, app: App, now: datetime) -> dict[str, Any] | None:
        with app.store.session() as session:
            report = reads.report(session, app.config, now)
        return {"report": page_context(report), "refresh": REFRESH}

    # -- login --------------------------------------------------------------
    def login_form(self, request: Request) -> Response:
        return self._render(request, "login", {"error": "", "next": auth.safe_next(request.query_params.get("next"))})

    async def login(self, request: Request) -> Response:
        user, error, status = await self.gate.login(request)
        if user is None:
            page = self._render(request, "login", {"error": error, "next": auth.safe_next(
                request.query_params.get("next"))}, status=status)
            if status in (429, 503):
                page.headers["Retry-After"] = "60" if status == 429 else "5"
            return page
        return RedirectResponse(auth.safe_next(request.query_params.get("next")), status_code=303)

    async def logout(self, request: Request) -> Response:
        return await self.gate.logout(request)

    # -- rendering ----------------------------------------------------------
    def _guarded(self, request: Request, name: str,
                 read: Callable[[Request, App, datetime], dict[str, Any] | None]) -> Response:
        try:
            user = self.gate.user(request)
        except ConfigError as exc:
            return PlainTextResponse(f"The board's users file is broken:\n{exc}\n", status_code=503)
        if user is None:
            return auth.login_redirect(request)
        app = self.current()
        now = self.now()
        context = read(request, app, now)
        if context is None:
            return self._render(request, "missing", {"ref": request.path_params.get("ref", ""), "now": now},
                                status=404)
        return self._render(request, name, {**context, "user": user, "now": now})

    def _render(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        nonce = secrets.token_urlsafe(16)
        app = self.current()
        now = context.get("now") or self.now()
        page = app.config.templates.page(f"board/{name}", {
            "refresh": None, "user": "", **context, "now": now, "nonce": nonce, "csrf": auth.csrf_token(request),
            "login_required": self.gate.required, "when": when, "until": until})
        return HTMLResponse(page, status_code=status, headers={
            "Content-Security-Policy": (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                                        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                                        "base-uri 'none'"),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"})


def when(at: datetime | None, zone: str = "UTC") -> dict[str, str] | None:
    """An instant for `<time datetime=…>`: ISO-8601 UTC, and the text in `zone`
    (the page's script rewrites the text to the viewer's own time zone)."""
    if at is None:
        return None
    local = at.astimezone(ZoneInfo(zone))
    return {"iso": at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "text": local.strftime("%a %d %b %H:%M ") + (local.tzname() or zone)}


def until(at: datetime | None, now: datetime) -> str:
    """`in 25m` or `overdue 1h5m`, for a deadline."""
    if at is None:
        return ""
    left = timedelta(minutes=int((at - now).total_seconds() / 60))    # whole minutes: a board, not a stopwatch
    return f"in {format_duration(left)}" if left.total_seconds() >= 0 else f"overdue {format_duration(-left)}"
