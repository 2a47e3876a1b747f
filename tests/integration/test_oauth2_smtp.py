"""smtp_out with AUTH XOAUTH2: the aiosmtpd sink checks each token at the
tests' own OAuth2 provider, as Microsoft's and Google's relays check theirs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from helpers import eml
from mailtriage.config.load import read_token_file
from mailtriage.oauth2.tokenfile import write_token_file
from oauth2_servers import oauth2_site

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")   # loopback only

USER = "support@example.test"
CUSTOMER = "carla@customer.example"


@pytest.fixture
def site(tmp_path, oauth2_dovecot, provider, xoauth2_sink_control):
    _handler, port = xoauth2_sink_control
    return oauth2_site(tmp_path / "site", oauth2_dovecot, provider, smtp_port=port)


def ticket_mail(site, n: int = 1) -> None:  # type: ignore[no-untyped-def]
    path = site.dir / f"in-{n}.eml"
    path.write_bytes(eml(f"VPN down {n}", message_id=f"<s{n}@customer.example>"))
    assert site.ingest(path) == [f"MT-{n} new"]


def outbox(site) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(site.ok("outbox", "list", "--all", "--json"))


def test_an_acknowledgement_goes_out_through_auth_xoauth2(site, provider, xoauth2_sink):
    write_token_file(site.dir / "support.token", {"refresh_token": provider.issue(USER)})
    ticket_mail(site)
    assert site.ok("outbox", "flush").strip() == "sent 1, deferred 0, failed 0"
    [mail] = xoauth2_sink.messages
    assert mail.rcpt_tos == [CUSTOMER] and mail.msg["Subject"].startswith("[MT-1]")
    assert xoauth2_sink.logins == [(USER, True)]


def test_a_535_for_a_token_the_relay_finds_expired_means_a_refresh_and_the_mail_goes(site, provider, xoauth2_sink):
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(timespec="seconds")
    write_token_file(site.dir / "support.token", {"refresh_token": provider.issue(USER), "access_token": "at-stale",
                                                  "expires_at": later})
    ticket_mail(site)
    assert site.ok("outbox", "flush").strip() == "sent 1, deferred 0, failed 0"
    assert xoauth2_sink.logins == [(USER, False), (USER, True)]
    assert provider.grants() == 1
    assert [(row["status"], row["attempts"]) for row in outbox(site)] == [("sent", 1)]
    assert len(xoauth2_sink.messages) == 1


def test_a_refused_refresh_token_holds_the_mail_back_and_is_asked_about_once(site, provider, xoauth2_sink):
    write_token_file(site.dir / "support.token", {"refresh_token": "rt-revoked-long-ago"})
    ticket_mail(site)
    flushed, relay = site.ok("outbox", "flush").strip().splitlines()
    assert flushed == "sent 0, deferred 1, failed 0"
    assert relay.startswith("the relay is unavailable (no OAuth2 token): pending mail waits until")
    [row] = outbox(site)
    assert (row["status"], row["attempts"]) == ("pending", 0)       # the relay's trouble: no try counted
    assert "invalid_grant" in row["last_error"]
    assert read_token_file(site.dir / "support.token")["failing"] == "invalid_grant"
    ticket_mail(site, 2)
    site.ok("outbox", "flush", now=(datetime.now(timezone.utc) + timedelta(hours=2)).isoformat())
    assert provider.grants() == 1                         # the second flush read `failing` and asked nobody
    assert xoauth2_sink.messages == [] and xoauth2_sink.logins == []

    write_token_file(site.dir / "support.token", {"refresh_token": provider.issue(USER)})   # `oauth login`
    assert site.ok("outbox", "flush", now=(datetime.now(timezone.utc) + timedelta(hours=4)).isoformat()).strip() \
        == "sent 2, deferred 0, failed 0"
