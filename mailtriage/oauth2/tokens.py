"""Access tokens from a refresh token (RFC 6749 section 6), for XOAUTH2 logins.

    token_file ─► fresh access token in hand? ─► yes: use it
                                              └► no: refresh grant (Authlib) ─► token_file (rotated, atomically)

A TokenSource serves one login: a mailbox's IMAP watcher, or smtp_out in an
outbox flush. It refreshes a token that is about to expire, and again when
the server rejects one it still thought good (`refresh(rejected=…)`).

What can go wrong at the token endpoint:

* a timeout, a lost connection, a 5xx, `temporarily_unavailable`: a
  TemporaryFailure, and no new request before the backoff has passed;
* `invalid_grant` (revoked, expired, consent withdrawn), or the endpoint
  refusing the client: OAuth2Refused. It is written into the token file
  (`failing`), so no process asks again with that refresh token — no
  hammering, no account lockout — and `oauth status` can say why. Only a
  new `mailtriage oauth login` clears it.

Tokens never reach a log line: only expiry times and error codes do.
Expiry is the provider's wall clock, not the App's (a daemon run with
`--now` still talks to real servers).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError

from mailtriage.backoff import Backoff, Outage
from mailtriage.config.load import oauth2_secret, read_token_file, token_instant
from mailtriage.config.values import OAuth2Account
from mailtriage.errors import OAuth2Refused, TemporaryFailure
from mailtriage.oauth2.tokenfile import locked, write_token_file

log = logging.getLogger(__name__)

LEEWAY = 60.0            # refresh when less than this (at most a quarter of the lifetime) is left
TIMEOUT = 30.0           # seconds, for every request to the token endpoint
BACKOFF = Backoff(first=2.0, cap=300.0)
TEMPORARY = frozenset({"temporarily_unavailable", "server_error", "slow_down"})


def session(account: OAuth2Account, scope: str) -> OAuth2Session:
    """Authlib's client: the secret in the body for a confidential client,
    only the client_id for a public one (device-code apps usually are)."""
    secret = oauth2_secret(account.oauth2)
    return OAuth2Session(client_id=account.oauth2.client_id, client_secret=secret, scope=scope,
                         token_endpoint_auth_method="client_secret_post" if secret else "none",
                         default_timeout=TIMEOUT)


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def token_record(token: dict[str, Any], refresh_token: str, now: float) -> dict[str, Any]:
    """What the token file holds after a grant (the refresh token, rotated or not)."""
    expires = token.get("expires_at")
    return {"refresh_token": token.get("refresh_token") or refresh_token,
            "access_token": token["access_token"],
            "expires_at": stamp(float(expires)) if expires else None,
            "refreshed_at": stamp(now)}


def fresh(held: dict[str, Any], now: float) -> bool:
    """Is the access token in `held` good for a login now (and a while longer)?"""
    if not held.get("access_token") or held.get("failing"):
        return False
    if not held.get("expires_at"):
        return True                          # no lifetime given: good until a server rejects it
    expires = token_instant(held["expires_at"])
    if expires is None:
        return False                         # not a time (read_token_file refuses it): as if expired
    issued = token_instant(held.get("refreshed_at")) or expires
    return expires.timestamp() - now > min(LEEWAY, (expires - issued).total_seconds() / 4)


class TokenSource:
    """Access tokens for one login, from the refresh token in `path`."""

    def __init__(self, account: OAuth2Account, path: Path, *, backoff: Backoff = BACKOFF,
                 wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self.account, self.path = account, path
        self.wall, self.monotonic = wall, monotonic
        self.held: dict[str, Any] = {}
        self.retry_at = 0.0
        self.outage = Outage(f"oauth2 {account.name}: token endpoint {account.oauth2.endpoints().token_url}",
                             log, backoff, monotonic)

    def access_token(self) -> str:
        """A token good for a login: the one in hand, else a refreshed one."""
        if fresh(self.held, self.wall()):
            return str(self.held["access_token"])
        return self.refresh()

    def refresh(self, rejected: str | None = None) -> str:
        """A new access token: the one in hand is expiring, or a server has just
        rejected `rejected`. Raises TemporaryFailure, OAuth2Refused, or
        ConfigError (the token file is broken)."""
        wait = self.retry_at - self.monotonic()
        if wait > 0:
            raise TemporaryFailure(f"oauth2 {self.account.name}: token endpoint failing; next try in {wait:.0f} s")
        with locked(self.path):
            held = read_token_file(self.path, self.account.name)
            if held.get("failing"):
                raise _refused(self.account, self.path, held["failing"])
            if fresh(held, self.wall()) and held["access_token"] != rejected:
                self.held = held             # another process, or the other login on this file, refreshed it
            else:
                self.held = self._grant(held)
        return str(self.held["access_token"])

    def _grant(self, held: dict[str, Any]) -> dict[str, Any]:
        endpoints = self.account.oauth2.endpoints()
        try:
            with session(self.account, endpoints.scope) as client:
                token = client.refresh_token(endpoints.token_url, refresh_token=held["refresh_token"])
            record = token_record(token, held["refresh_token"], self.wall())
        except OAuthError as exc:
            if exc.error in TEMPORARY:
                raise self._failed(exc) from exc
            self._record_refusal(held, exc)
            raise _refused(self.account, self.path, exc.error) from exc
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise self._failed(exc) from exc
        self.outage.ended()
        self.retry_at = 0.0
        write_token_file(self.path, record)
        rotated = record["refresh_token"] != held["refresh_token"]
        log.info("oauth2 %s: new access token, valid until %s%s", self.account.name, record["expires_at"] or "?",
                 "; the refresh token was rotated and written back" if rotated else "")
        return record

    def _failed(self, exc: BaseException) -> TemporaryFailure:
        """A temporary failure: no request before the backoff has passed."""
        self.retry_at = self.monotonic() + self.outage.failed(exc)
        return TemporaryFailure(f"oauth2 {self.account.name}: token endpoint: {exc.__class__.__name__}: {exc}")

    def _record_refusal(self, held: dict[str, Any], exc: OAuthError) -> None:
        """Logged once, here: every later try reads `failing` from the file and asks nobody."""
        log.error("oauth2 %s: the token endpoint refused the refresh token (%s: %s); logins with it stop "
                  "until `mailtriage oauth login %s`, then SIGHUP", self.account.name, exc.error,
                  exc.description or "no description", self.account.name)
        write_token_file(self.path, {**held, "access_token": None, "failing": exc.error,
                                     "failing_since": stamp(self.wall()),
                                     "error_description": exc.description or ""})


def _refused(account: OAuth2Account, path: Path, reason: str) -> OAuth2Refused:
    return OAuth2Refused(reason, f"{path}: the refresh token was refused ({reason}); "
                                 f"`mailtriage oauth login {account.name}` signs in again")
