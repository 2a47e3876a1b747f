"""XOAUTH2 IMAP logins (`ImapWatcher.run_once`) against a real Dovecot whose
oauth2 passdb checks each token at the tests' own OAuth2 provider."""

from __future__ import annotations

import json
import stat
import time

import pytest

from helpers import eml
from mailtriage.app import build_app, load_config
from mailtriage.backoff import Backoff
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.config.load import read_token_file
from mailtriage.config.values import OAuth2Account
from mailtriage.errors import OAuth2Refused, TemporaryFailure
from mailtriage.ingest.imap import ImapWatcher
from mailtriage.oauth2 import TokenSource
from mailtriage.oauth2.tokenfile import write_token_file
from oauth2_servers import oauth2_site

NOW = parse_instant("2026-03-02T09:00:00+00:00")
USER = "support@example.test"


@pytest.fixture
def site(tmp_path, oauth2_dovecot, provider):
    oauth2_dovecot.reset(USER)
    site = oauth2_site(tmp_path / "site", oauth2_dovecot, provider)
    write_token_file(site.dir / "support.token", {"refresh_token": provider.issue(USER)})
    return site


@pytest.fixture
def watcher(site):
    app = build_app(load_config(site.config), FixedClock(NOW))
    [box] = app.settings.mailboxes
    watcher = ImapWatcher(box, lambda: app)
    yield watcher
    watcher.close()
    app.store.close()


def token_file(site) -> dict:  # type: ignore[no-untyped-def]
    return read_token_file(site.dir / "support.token")


def test_xoauth2_login_takes_mail_in_and_the_rotated_refresh_token_is_on_disk(site, watcher, oauth2_dovecot,
                                                                              provider):
    first = token_file(site)["refresh_token"]
    oauth2_dovecot.deliver(USER, eml("VPN down", message_id="<o1@customer.example>"))
    [taken] = watcher.run_once(NOW)
    assert (taken.message_id, taken.outcome.action) == ("<o1@customer.example>", "new")

    held = token_file(site)
    assert held["refresh_token"] != first
    assert provider.live(held["refresh_token"]) and not provider.live(first)     # the old one is dead now
    assert provider.introspect(held["access_token"]) == USER
    assert stat.S_IMODE((site.dir / "support.token").stat().st_mode) == 0o600
    assert provider.grants() == 1


def test_an_expired_access_token_is_refreshed_before_the_next_login(site, watcher, oauth2_dovecot, provider):
    provider.expires_in = 3
    watcher.run_once(NOW)
    before = token_file(site)
    watcher.close()
    time.sleep(3.2)                                   # the access token has expired
    oauth2_dovecot.deliver(USER, eml("Printer", message_id="<o2@customer.example>"))
    [taken] = watcher.run_once(NOW)
    assert taken.outcome.action == "new"
    after = token_file(site)
    assert provider.grants() == 2
    assert after["expires_at"] > before["expires_at"] and after["refresh_token"] != before["refresh_token"]


def test_a_token_the_server_rejects_before_its_expiry_is_refreshed_once(site, watcher, oauth2_dovecot, provider):
    watcher.run_once(NOW)
    watcher.close()
    provider.forget_access_tokens()                   # valid for an hour, says the file; Dovecot says no
    oauth2_dovecot.deliver(USER, eml("Fax", message_id="<o3@customer.example>"))
    [taken] = watcher.run_once(NOW)
    assert taken.outcome.action == "new"
    assert provider.grants() == 2


def test_invalid_grant_stops_the_logins_without_asking_again(site, watcher, oauth2_dovecot, provider):
    watcher.run_once(NOW)
    watcher.close()
    provider.revoke(USER)
    with pytest.raises(OAuth2Refused, match="invalid_grant"):
        watcher.run_once(NOW)
    asked = len(provider.requests)
    for _ in range(3):
        with pytest.raises(OAuth2Refused):
            watcher.run_once(NOW)
    assert len(provider.requests) == asked            # no hammering: the file says it is refused
    assert token_file(site)["failing"] == "invalid_grant"

    code, out, _err = site.cli("oauth", "status", "--json")
    [status] = json.loads(out)["tokens"]
    assert code == 1
    assert (status["name"], status["status"]) == ("support", "failing: invalid_grant")
    assert status["error_description"] == "the refresh token is revoked or expired"


def test_a_failing_token_endpoint_is_retried_after_the_backoff_only(site, provider):
    account = OAuth2Account("support", USER, load_config(site.config).settings.mailboxes[0].oauth2)
    source = TokenSource(account, site.dir / "support.token", backoff=Backoff(0.5, 0.5, jitter=0.0))
    provider.failures = [503]
    with pytest.raises(TemporaryFailure, match="HTTPError"):
        source.access_token()
    with pytest.raises(TemporaryFailure, match="next try in"):
        source.access_token()
    assert provider.grants() == 1                     # the second call asked nobody
    time.sleep(0.55)
    assert provider.introspect(source.access_token()) == USER
    assert provider.grants() == 2
