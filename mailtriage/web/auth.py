"""Who may see the board: the login form, the session, logout.

With `http.users_file` set, every board page needs a login; without it the
board is open to whoever reaches the listener (which listens on 127.0.0.1
unless told otherwise). The session is Starlette's SessionMiddleware: a
cookie signed with itsdangerous, HttpOnly, SameSite=Lax, holding the user's
name and a CSRF token. Its secret is `$MAILTRIAGE_SESSION_SECRET`, else
random per process (a restart logs everybody out); `http.secure_cookies`
marks it Secure (behind a TLS proxy). A session can be ended from our side:
it holds a fingerprint of the user's password hash (a changed password or a
removed user ends it, checked on every page), an id that logout revokes
(remembered per process, for the session's age), and its login time (12 h
from the login, however busy the session: the cookie itself is re-signed
on every answer). The login and logout
forms carry the CSRF token; a cross-site POST has neither the cookie
(SameSite) nor the token. A wrong name and a wrong password get the same
answer after the same work (users.Users.verify); the password is never
logged or kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailtriage.errors import ConfigError
from mailtriage.web import users
from mailtriage.web.throttle import Busy, Guard

log = logging.getLogger(__name__)

SECRET_ENV = "MAILTRIAGE_SESSION_SECRET"
COOKIE = "mailtriage_board"
SESSION_AGE = 12 * 3600            # a working day, then log in again
MAX_FORM = 4096                    # bytes: a name, a password, a token


def session_secret() -> str:
    """`$MAILTRIAGE_SESSION_SECRET`, else a random one (for this process)."""
    return os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)


def session_middleware(secret: str | None = None, secure: bool = False) -> Middleware:
    return Middleware(SessionMiddleware, secret_key=secret or session_secret(), session_cookie=COOKIE,
                      max_age=SESSION_AGE, same_site="lax", https_only=secure)


def fingerprint(hashed: str) -> str:
    """Of a user's password hash, for the session: a new password (a new salt) changes it.
    It tells nothing about the password: the hash itself is never in the cookie."""
    return hashlib.sha256(hashed.encode()).hexdigest()[:16]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


def safe_next(target: str | None) -> str:
    """Only a path on this site: `//evil.example` and `/\\evil` would leave it."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='/')}", status_code=303)


class Gate:
    """The users file of the running config (re-read when it changes on disk)."""

    def __init__(self, users_file: Callable[[], Path | None], guard: Guard | None = None,
                 clock: Callable[[], float] = time.time):
        self.users_file = users_file
        self.guard = guard or Guard()
        self.clock = clock
        self._revoked: dict[str, float] = {}          # session id → when it would have expired anyway
        self._lock = threading.Lock()
        self._cache: tuple[tuple[Path, int, int, int, int], users.Users] | None = None

    @property
    def required(self) -> bool:
        return self.users_file() is not None

    def users(self) -> users.Users | None:
        """None: open board. A broken users file raises ConfigError (the page says so)."""
        path = self.users_file()
        if path is None:
            return None
        try:
            info = path.stat()
        except OSError:
            info = None
        key = (path, info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino) if info else None   # ctime: a chmod
        if key is not None and self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        found = users.read(path)
        if key is not None:
            self._cache = (key, found)
        return found

    def user(self, request: Request) -> str | None:
        """The logged-in user; "" on an open board; None: a login is needed."""
        known = self.users()
        if known is None:
            return ""
        session = request.session
        name, key, sid, at = (session.get(field) for field in ("user", "key", "sid", "at"))
        if not (isinstance(name, str) and isinstance(key, str) and isinstance(sid, str) and isinstance(at, int)):
            return None
        hashed = known.hashes.get(name)
        if hashed is None or not secrets.compare_digest(key, fingerprint(hashed)):
            return None                             # removed, or a new password since this login
        if not 0 <= self.clock() - at < SESSION_AGE:
            return None
        with self._lock:
            return None if sid in self._revoked else name

    async def login(self, request: Request) -> tuple[str | None, str, int]:
        """POST /login: (the user, "", 303) or (None, why not, the status to answer)."""
        form = await _form(request)
        if form is None or not secrets.compare_digest(form.get("csrf", ""), csrf_token(request)):
            return None, "The form expired: please try again.", 401
        name, password = form.get("name", "").strip(), form.get("password", "")
        try:
            known = self.users()
        except ConfigError as exc:
            log.error("board login: the users file is broken:\n%s", exc)
            return None, "Logins are unavailable: the users file is broken (see the log).", 503
        if known is None:
            return "", "", 303
        host = request.client.host if request.client else "?"
        keys = (f"address:{host}", f"name:{name[:64]}")
        if self.guard.refused_for(*keys) > 0:           # no Argon2 for a refused address or name
            log.warning("board login throttled for %r from %s", name[:64], host)
            return None, "Too many failed logins: wait a minute, then try again.", 429
        try:
            matched = await self.guard.verify(lambda: run_in_threadpool(known.verify, name, password))
        except Busy:
            log.warning("board login from %s: too many logins at once, answered busy", host)
            return None, "The board is busy: try again in a moment.", 503
        if not matched:
            self.guard.failed(*keys)
            log.warning("board login refused for %r from %s", name[:64], host)
            return None, "Wrong name or password.", 401
        self.guard.succeeded(keys[1])
        request.session.clear()                     # a fresh session: no fixation
        request.session.update(user=name, key=fingerprint(known.hashes[name]), sid=secrets.token_urlsafe(16),
                               at=int(self.clock()), csrf=secrets.token_urlsafe(24))
        log.info("board login: %s", name)
        return name, "", 303

    async def logout(self, request: Request) -> Response:
        form = await _form(request)
        if form is not None and secrets.compare_digest(form.get("csrf", ""), csrf_token(request)):
            self._revoke(request.session.get("sid"), request.session.get("at"))
            request.session.clear()
        return RedirectResponse("/login" if self.required else "/", status_code=303)

    def _revoke(self, sid: object, at: object) -> None:
        """A copy of the cookie must not outlive the logout; forgotten once it has expired anyway."""
        if not isinstance(sid, str) or not isinstance(at, int):
            return
        now = self.clock()
        with self._lock:
            for old in [old for old, until in self._revoked.items() if until <= now]:
                del self._revoked[old]
            self._revoked[sid] = at + SESSION_AGE


async def _form(request: Request) -> dict[str, str] | None:
    """An urlencoded form of at most MAX_FORM bytes (the stdlib parses it: no multipart here)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    return {key: values[0] for key, values in fields.items()}
