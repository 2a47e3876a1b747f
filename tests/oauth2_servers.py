"""The OAuth2 side of the integration tests (a pytest plugin).

* ``provider``        – the tests' own OAuth2 server on loopback (http.server):
  the refresh grant with rotation, the device-code endpoints (RFC 8628) and
  token introspection (RFC 7662). It stands in for Microsoft's and Google's
  endpoints, which the tests cannot reach.
* ``oauth2_dovecot``  – a second private Dovecot whose ``oauth2`` passdb checks
  every XOAUTH2 token at the provider's introspection endpoint
  (../shared/recipes/dovecot/oauth2.md); password logins still work for
  the tests' own IMAP client.
* ``xoauth2_sink``    – an aiosmtpd sink that requires AUTH XOAUTH2 and checks
  the token at the same provider.

One of each per test session; ``provider.reset()`` runs before each test.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from daemons import imap_site
from helpers import Site, need
from servers import SinkHandler, free_port, start_dovecot

CLIENT_ID = "mailtriage-test"
CLIENT_SECRET = "test-client-secret"
SECRET_ENV = "MT_TEST_OAUTH_SECRET"
SCOPE = "offline_access mail"


@dataclass
class Grant:
    user: str
    expires: float                 # time.monotonic() deadline (access tokens)


class Provider:
    """The authorization server's state; every method is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.refresh_tokens: dict[str, str] = {}         # live refresh token → user
            self.access_tokens: dict[str, Grant] = {}
            self.devices: dict[str, dict[str, Any]] = {}     # device_code → user_code, user (once approved)
            self.issued: list[str] = []                      # every token ever handed out
            self.requests: list[tuple[str, str]] = []        # (path, grant_type) of each POST
            self.failures: list[int] = []                    # HTTP statuses for the next token requests
            self.refusals = 0                                # invalid_grant answers to the refresh grant
            self.expires_in = 3600
            self.rotate = True
            self.interval = 1
            self.slow_down_once = False

    # -------------------------------------------------------- the tests' controls
    def issue(self, user: str) -> str:
        """A refresh token for `user`, as if they had signed in."""
        with self.lock:
            return self._new("rt", user, self.refresh_tokens)

    def revoke(self, user: str) -> None:
        """The admin revoked the user's sessions (or consent was withdrawn)."""
        with self.lock:
            for table in (self.refresh_tokens, self.access_tokens):
                for token in [t for t, owner in table.items() if _user(owner) == user]:
                    del table[token]

    def forget_access_tokens(self) -> None:
        """Every access token stops working before its expiry (a server restart, a revocation)."""
        with self.lock:
            self.access_tokens.clear()

    def approve(self, user_code: str, user: str | None) -> None:
        """The person opened the verification URL, signed in and typed the code
        (None: they declined)."""
        with self.lock:
            [device] = [d for d in self.devices.values() if d["user_code"] == user_code]
            device["user"] = user if user is not None else False

    def grants(self, grant_type: str = "refresh_token") -> int:
        with self.lock:
            return sum(1 for path, grant in self.requests if path == "/token" and grant == grant_type)

    def live(self, refresh_token: str) -> bool:
        with self.lock:
            return refresh_token in self.refresh_tokens

    def introspect(self, token: str) -> str | None:
        """The user an access token belongs to, while it is valid."""
        with self.lock:
            grant = self.access_tokens.get(token)
            return grant.user if grant is not None and grant.expires > time.monotonic() else None

    # -------------------------------------------------------- the endpoints
    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(("/token", form.get("grant_type", "")))
            if self.failures:
                return self.failures.pop(0), {}
            if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                return 401, {"error": "invalid_client"}
            if form.get("grant_type") == "refresh_token":
                return self._refresh(form.get("refresh_token", ""))
            if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
                return self._device_token(form.get("device_code", ""))
            return 400, {"error": "unsupported_grant_type"}

    def device(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(("/device", ""))
            if form.get("client_id") != CLIENT_ID:
                return 400, {"error": "invalid_client"}
            code, user_code = secrets.token_urlsafe(16), f"{secrets.randbelow(10**8):08d}"
            self.devices[code] = {"user_code": user_code, "user": None}
            return 200, {"device_code": code, "user_code": user_code, "verification_uri": self.url + "/activate",
                         "expires_in": 600, "interval": self.interval}

    def introspection(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        user = self.introspect(form.get("token", ""))
        return 200, {"active": True, "username": user} if user else {"active": False}

    def _refresh(self, refresh_token: str) -> tuple[int, dict[str, Any]]:
        user = self.refresh_tokens.get(refresh_token)
        if user is None:
            self.refusals += 1
            return 400, {"error": "invalid_grant", "error_description": "the refresh token is revoked or expired"}
        if self.rotate:
            del self.refresh_tokens[refresh_token]
            refresh_token = self._new("rt", user, self.refresh_tokens)
        return 200, self._tokens(user, refresh_token if self.rotate else None)

    def _device_token(self, device_code: str) -> tuple[int, dict[str, Any]]:
        device = self.devices.get(device_code)
        if device is None:
            return 400, {"error": "expired_token"}
        if self.slow_down_once:
            self.slow_down_once = False
            return 400, {"error": "slow_down"}
        if device["user"] is None:
            return 400, {"error": "authorization_pending"}
        if device["user"] is False:
            return 400, {"error": "access_denied"}
        del self.devices[device_code]
        return 200, self._tokens(device["user"], self._new("rt", device["user"], self.refresh_tokens))

    def _tokens(self, user: str, refresh_token: str | None) -> dict[str, Any]:
        access = self._new("at", Grant(user, time.monotonic() + self.expires_in), self.access_tokens)
        answer = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in, "scope": SCOPE}
        return answer | ({"refresh_token": refresh_token} if refresh_token else {})

    def _new(self, kind: str, value: Any, table: dict[str, Any]) -> str:
        token = f"{kind}-{secrets.token_urlsafe(24)}"
        table[token] = value
        self.issued.append(token)
        return token


def _user(owner: Any) -> str:
    return owner.user if isinstance(owner, Grant) else owner


class _Handler(BaseHTTPRequestHandler):
    provider: Provider

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
        routes = {"/token": self.provider.token, "/device": self.provider.device,
                  "/introspect": self.provider.introspection}
        status, body = routes[self.path](form) if self.path in routes else (404, {"error": "not_found"})
        data = json.dumps(body).encode() if body else b"temporarily unavailable"
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if body else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass                        # the tests read the provider's own records instead


@pytest.fixture(scope="session")
def provider_server():
    provider = Provider()
    handler = type("Handler", (_Handler,), {"provider": provider})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield provider
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider(provider_server, monkeypatch):
    provider_server.reset()
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    return provider_server


# ------------------------------------------------------------------ Dovecot
OAUTH2_PASSDB = """\
auth_mechanisms = plain login xoauth2 oauthbearer
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = @BASE@/oauth2.conf.ext
}
"""


@pytest.fixture(scope="session")
def oauth2_dovecot(provider_server):
    need(Path("/usr/sbin/dovecot").exists() and shutil.which("doveadm") is not None,
         "Dovecot is not installed (apt-get install dovecot-imapd)")

    def prepare(base: Path, conf: str) -> str:
        (base / "oauth2.conf.ext").write_text(
            f"introspection_mode = post\nintrospection_url = {provider_server.url}/introspect\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n")
        with open(base / "users", "a") as users:
            users.write("sales@example.test:{PLAIN}sales-secret::::::\n")
        conf = conf.replace("auth_mechanisms = plain login\n", "")
        return conf.replace("passdb {", OAUTH2_PASSDB.replace("@BASE@", str(base)) + "passdb {", 1)

    server = start_dovecot(free_port(), prepare)
    server.users["sales@example.test"] = "sales-secret"
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


# ------------------------------------------------------------- SMTP sink
class XOAuth2Sink(SinkHandler):
    """Records mail like the plain sink; AUTH XOAUTH2 checks the token at the provider."""

    def __init__(self, provider: Provider):
        super().__init__()
        self.provider = provider
        self.logins: list[tuple[str, bool]] = []       # type: ignore[assignment]  # (user, accepted) per AUTH XOAUTH2

    async def auth_XOAUTH2(self, server, args):  # type: ignore[no-untyped-def]  # noqa: N802
        raw = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth("")
        fields = dict(part.split("=", 1) for part in raw.decode().split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        accepted = self.provider.introspect(token) == user
        with self.lock:
            self.logins.append((user, accepted))
        return AuthResult(success=accepted, handled=False)


@pytest.fixture(scope="session")
def xoauth2_sink_control(provider_server):
    handler = XOAuth2Sink(provider_server)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), auth_required=True,
                            auth_require_tls=False)
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def xoauth2_sink(xoauth2_sink_control):
    handler, _port = xoauth2_sink_control
    handler.reset()
    return handler


# ------------------------------------------------------------------ sites
def oauth2_block(provider: Provider, token_file: str) -> dict[str, str]:
    return {"token_url": provider.url + "/token", "device_authorization_url": provider.url + "/device",
            "scope": SCOPE, "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV, "token_file": token_file}


def oauth2_site(root: Path, dovecot, provider: Provider, *, smtp_port: int | None = None,  # type: ignore[no-untyped-def]
                sales: bool = False, **imap: Any) -> Site:
    """imap_site's `support` mailbox logging in with XOAUTH2 (token file
    support.token); `sales` adds a second such mailbox (sales.token);
    `smtp_port` sends through the XOAUTH2 sink with support's token."""
    site = imap_site(root, dovecot, **({"smtp_port": smtp_port} if smtp_port else {}), **imap)
    data = yaml.safe_load(site.config.read_text())
    support = data["mailboxes"][0]
    del support["imap"]["password_env"]
    support["imap"]["auth"] = "oauth2"
    support["oauth2"] = oauth2_block(provider, "support.token")
    if sales:
        data["mailboxes"].append({"name": "sales", "address": "sales@example.test", "queue": "sales",
                                  "imap": {**support["imap"], "username": "sales@example.test"},
                                  "oauth2": oauth2_block(provider, "sales.token")})
    if smtp_port:
        data["smtp_out"].update(username="support@example.test", auth="oauth2",
                                oauth2=oauth2_block(provider, "support.token"))
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return site
