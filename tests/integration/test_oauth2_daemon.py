"""`mailtriage run` with two XOAUTH2 mailboxes and smtp_out on XOAUTH2, all
checked by the tests' own provider: access tokens expiring in the middle of
IDLE, a refresh token revoked for one mailbox while the other goes on, and
`oauth login` + SIGHUP bringing it back without losing the mail between."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import time

import pytest

from daemons import daemon_env, daemons  # noqa: F401
from helpers import eml
from mailtriage.config.load import read_token_file
from mailtriage.oauth2.tokenfile import write_token_file
from oauth2_servers import oauth2_site
from servers import wait_for

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")   # loopback only

SUPPORT, SALES = "support@example.test", "sales@example.test"


def subjects(site) -> set[str]:  # type: ignore[no-untyped-def]
    return {ticket["subject"] for ticket in site.tickets()}


def arrives(site, subject: str, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    wait_for(lambda: subject in subjects(site), timeout=timeout)


def oauth_login(site, provider, user: str) -> None:  # type: ignore[no-untyped-def]
    """`mailtriage oauth login support`, and the person signs in."""
    command = [sys.executable, "-m", "mailtriage", "--config", str(site.config), "oauth", "login", "support"]
    proc = subprocess.Popen(command, env=daemon_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code = re.search(r"enter the code (\d+)", proc.stdout.readline()).group(1)
    provider.approve(code, user)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_two_xoauth2_mailboxes_one_refused_then_signed_in_again(tmp_path, oauth2_dovecot, provider,  # noqa: PLR0915
                                                              xoauth2_sink_control, xoauth2_sink, daemons):  # noqa: F811
    for user in (SUPPORT, SALES):
        oauth2_dovecot.reset(user)
    provider.expires_in = 4
    site = oauth2_site(tmp_path / "site", oauth2_dovecot, provider, smtp_port=xoauth2_sink_control[1], sales=True)
    first = provider.issue(SUPPORT)
    write_token_file(site.dir / "support.token", {"refresh_token": first})
    write_token_file(site.dir / "sales.token", {"refresh_token": provider.issue(SALES)})
    daemon = daemons(site, "-vv").wait_ready()
    daemon.wait_log("imap support/INBOX: connected; waiting with IDLE")
    daemon.wait_log("imap sales/INBOX: connected; waiting with IDLE")

    # XOAUTH2 in and out: both mailboxes take mail in, acknowledgements go through AUTH XOAUTH2.
    oauth2_dovecot.deliver(SUPPORT, eml("VPN down", message_id="<d1@customer.example>"))
    oauth2_dovecot.deliver(SALES, eml("Quote please", sender="bob@customer.example", to=SALES,
                                      message_id="<d2@customer.example>"))
    arrives(site, "VPN down")
    arrives(site, "Quote please")
    wait_for(lambda: len(xoauth2_sink.messages) == 2)
    assert xoauth2_sink.logins and all(ok for _user, ok in xoauth2_sink.logins)

    # The access token expires in the middle of IDLE: the session goes on, mail still comes.
    expired, grants = read_token_file(site.dir / "support.token")["access_token"], provider.grants()
    time.sleep(4.5)
    oauth2_dovecot.deliver(SUPPORT, eml("Still down", message_id="<d3@customer.example>"))
    arrives(site, "Still down")
    # The next login needs a new token: the server drops the session, the watcher logs in again
    # with a refreshed one (refreshed by whichever came first: the watcher, or smtp_out sending
    # the acknowledgement, which shares support.token).
    oauth2_dovecot.doveadm("kick", SUPPORT)
    oauth2_dovecot.deliver(SUPPORT, eml("After the kick", message_id="<d4@customer.example>"))
    arrives(site, "After the kick")
    assert daemon.log().count("imap support/INBOX: connected; waiting with IDLE") == 2
    current = read_token_file(site.dir / "support.token")["access_token"]
    assert provider.grants() > grants and current != expired and provider.introspect(current) == SUPPORT
    rotated = read_token_file(site.dir / "support.token")["refresh_token"]
    assert rotated != first and provider.live(rotated) and not provider.live(first)

    # invalid_grant for support: that mailbox stops; sales goes on; nobody hammers the provider.
    provider.revoke(SUPPORT)
    oauth2_dovecot.doveadm("kick", SUPPORT)
    daemon.wait_log("imap support/INBOX: logins stopped")
    oauth2_dovecot.deliver(SUPPORT, eml("Meanwhile", message_id="<d5@customer.example>"))
    oauth2_dovecot.deliver(SALES, eml("Second quote", sender="bob@customer.example", to=SALES,
                                      message_id="<d6@customer.example>"))
    arrives(site, "Second quote")
    time.sleep(3)
    assert "Meanwhile" not in subjects(site)
    assert provider.refusals == 1                     # asked once; the file says so to everyone since
    statuses = {t["name"]: t["status"] for t in json.loads(site.cli("oauth", "status", "--json")[1])["tokens"]}
    assert statuses == {"support": "failing: invalid_grant", "sales": "ok", "smtp_out": "failing: invalid_grant"}
    assert daemon.log().count("the token endpoint refused the refresh token (invalid_grant") == 1

    # A new sign-in and SIGHUP: support resumes and takes the mail that waited in the folder.
    oauth_login(site, provider, SUPPORT)
    daemon.send(signal.SIGHUP)
    arrives(site, "Meanwhile", timeout=20)
    assert {t["status"] for t in json.loads(site.ok("oauth", "status", "--json"))["tokens"]} == {"ok"}
    wait_for(lambda: len(xoauth2_sink.messages) == 6)     # the acknowledgement that waited went too
    assert [row["status"] for row in json.loads(site.ok("outbox", "list", "--all", "--json"))] == ["sent"] * 6

    # No token ever reached the log, not even at -vv (nor base64-encoded, as XOAUTH2 sends them).
    log = daemon.log()
    leaked = [token for token in provider.issued if token in log]
    for token in provider.issued:
        for user in (SUPPORT, SALES):
            blob = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()
            leaked += [token] if blob in log else []
    assert leaked == []
