"""`mailtriage oauth login NAME`: the device-code flow (RFC 8628).

    POST device_authorization_url ─► show the URL and the user code ─► poll the token endpoint
       (authorization_pending: wait; slow_down: wait 5 s longer) ─► token_file (0600, atomically)

The person signs in on any browser; mailtriage never sees a password. The
new token file replaces the old one whatever it held (a refused token
included); a running daemon takes it at the next SIGHUP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import requests
from authlib.integrations.requests_client import OAuthError

from mailtriage.config.values import OAuth2Account
from mailtriage.errors import TemporaryFailure, UsageError
from mailtriage.oauth2.tokenfile import locked, write_token_file
from mailtriage.oauth2.tokens import TIMEOUT, session, token_record

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN = 5.0                    # RFC 8628 section 3.5: each slow_down adds 5 s to the interval
NO_DEVICE_FLOW = {
    "google": "Google's device flow does not allow the Gmail scope (https://mail.google.com/; Google answers "
              "invalid_scope), so `oauth login` cannot sign a Gmail mailbox in: get a refresh token with a "
              "Desktop-app OAuth client's browser sign-in and write {\"refresh_token\": \"…\"} to the "
              "token_file (mode 0600)",
}


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    expires_in: float
    interval: float


def login(account: OAuth2Account, path: Path, say: Callable[[str], None], *,
          sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
          wall: Callable[[], float] = time.time) -> dict[str, Any]:
    """Sign in with the device code, store the tokens in `path`, return what was stored."""
    endpoints = account.oauth2.endpoints()
    if not endpoints.device_authorization_url:
        raise UsageError(NO_DEVICE_FLOW.get(account.oauth2.provider or "", "") or
                         f"oauth2 {account.name}: no device_authorization_url in the oauth2: block")
    with session(account, endpoints.scope) as client:
        code = _request_code(client, endpoints.device_authorization_url, account)
        say(f"To sign in {account.user} for mailtriage ({account.name}), open {code.verification_uri} "
            f"and enter the code {code.user_code}")
        token = _poll(client, endpoints.token_url, code, sleep, monotonic)
    if not token.get("refresh_token"):
        raise UsageError(f"oauth2 {account.name}: the provider gave no refresh token "
                         f"(the scope needs offline_access where the provider asks for it)")
    record = token_record(token, token["refresh_token"], wall())   # the provider's clock, as TokenSource
    with locked(path):
        write_token_file(path, record)
    return record


def _request_code(client: Any, url: str, account: OAuth2Account) -> DeviceCode:
    try:
        response = client.post(url, data={"client_id": account.oauth2.client_id, "scope": client.scope},
                               withhold_token=True, timeout=TIMEOUT)
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise TemporaryFailure(f"oauth2 {account.name}: {url}: {exc}") from exc
    if not isinstance(data, dict) or "device_code" not in data:
        error = data.get("error_description") or data.get("error") if isinstance(data, dict) else None
        raise UsageError(f"oauth2 {account.name}: {url} answered {response.status_code}: {error or 'no device code'}")
    return DeviceCode(device_code=data["device_code"], user_code=data["user_code"],
                      # Google's endpoint says verification_url, RFC 8628 verification_uri
                      verification_uri=data.get("verification_uri") or data.get("verification_url", "?"),
                      expires_in=float(data.get("expires_in", 900)), interval=float(data.get("interval", 5)))


def _poll(client: Any, token_url: str, code: DeviceCode, sleep: Callable[[float], None],
          monotonic: Callable[[], float]) -> dict[str, Any]:
    """Ask until the person has signed in, declined, or the code has expired."""
    deadline, interval = monotonic() + code.expires_in, code.interval
    while True:
        try:
            return dict(client.fetch_token(token_url, grant_type=DEVICE_GRANT, device_code=code.device_code))
        except OAuthError as exc:
            if exc.error == "slow_down":
                interval += SLOW_DOWN
            elif exc.error != "authorization_pending":
                raise UsageError(_why(exc)) from exc
        except requests.RequestException as exc:
            raise TemporaryFailure(f"{token_url}: {exc}") from exc
        if monotonic() + interval > deadline:
            raise UsageError("the code expired before anyone signed in; run `oauth login` again")
        sleep(interval)


def _why(exc: OAuthError) -> str:
    reasons = {"access_denied": "the sign-in was declined",
               "expired_token": "the code expired before anyone signed in; run `oauth login` again"}
    return reasons.get(str(exc.error), f"the token endpoint said {exc.error}: {exc.description or ''}".strip())
