"""OAuth2 settings: the providers' presets, what a config must say, and the
token file as `config check` and the daemon's start read it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from helpers import make_site
from mailtriage.config.load import load_settings, oauth2_problems, read_token_file
from mailtriage.config.oauth2 import OAuth2Settings
from mailtriage.config.values import Mailbox, SmtpOut, oauth2_accounts
from mailtriage.errors import ConfigError, Problem
from mailtriage.oauth2.tokenfile import locked, write_token_file


def test_microsoft_preset_is_the_v2_endpoint_of_the_tenant_with_the_outlook_scopes():
    endpoints = OAuth2Settings(provider="microsoft", tenant="contoso.onmicrosoft.com", client_id="c",
                               token_file="t").endpoints()
    assert endpoints.token_url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert endpoints.device_authorization_url == \
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
    assert endpoints.scope.split() == ["offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All",
                                       "https://outlook.office.com/SMTP.Send"]


def test_google_preset_and_explicit_keys_override_it():
    google = OAuth2Settings(provider="google", client_id="c", token_file="t").endpoints()
    assert (google.token_url, google.scope) == ("https://oauth2.googleapis.com/token", "https://mail.google.com/")
    assert google.device_authorization_url is None          # Gmail's scope is not allowed in the device flow
    mine = OAuth2Settings(provider="google", client_id="c", token_file="t", token_url="https://idp.test/token")
    assert mine.endpoints().token_url == "https://idp.test/token"
    assert mine.endpoints().scope == "https://mail.google.com/"


def test_another_provider_names_token_url_and_scope():
    with pytest.raises(ValidationError, match="token_url and scope are required"):
        OAuth2Settings(client_id="c", token_file="t", token_url="https://idp.test/token")
    other = OAuth2Settings(client_id="c", token_file="t", token_url="https://idp.test/token", scope="mail")
    assert other.endpoints().device_authorization_url is None


def test_a_tenant_cannot_smuggle_a_path_into_the_url():
    with pytest.raises(ValidationError, match="tenant"):
        OAuth2Settings(provider="microsoft", tenant="evil/../x", client_id="c", token_file="t")


def test_imap_auth_oauth2_needs_the_block_and_a_presets_user_is_an_address():
    imap = {"host": "outlook.office365.com", "username": "support@example.test", "auth": "oauth2"}
    with pytest.raises(ValidationError, match="no oauth2: block"):
        Mailbox(name="support", address="support@example.test", imap=imap)
    oauth2 = {"provider": "microsoft", "client_id": "c", "token_file": "t"}
    with pytest.raises(ValidationError, match="username must be the mailbox's email address"):
        Mailbox(name="support", address="support@example.test", imap={**imap, "username": "support"},
                oauth2=oauth2)
    with pytest.raises(ValidationError, match="username and an oauth2: block are required"):
        SmtpOut(host="smtp.office365.com", auth="oauth2", oauth2=oauth2)


def test_the_logins_that_use_oauth2_by_name(tmp_path):
    site = _oauth2_site(tmp_path)
    settings = load_settings(site)
    assert [(a.name, a.user) for a in oauth2_accounts(settings)] == \
        [("support", "support@example.test"), ("smtp_out", "support@example.test")]


def test_a_config_error_names_the_line(tmp_path):
    config = _oauth2_site(tmp_path, mailbox_oauth2={"provider": "yahoo", "client_id": "c", "token_file": "t"})
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    [problem] = caught.value.problems
    assert problem.line > 1 and "mailboxes.0.oauth2.provider" in problem.message


# ------------------------------------------------------------------ token files
GOOD = {"refresh_token": "rt-1"}


@pytest.mark.parametrize("content, mode, message", [
    (None, 0o600, "no such file (`mailtriage oauth login support` writes it)"),
    ("", 0o600, "empty (`mailtriage oauth login support` writes it again)"),
    ("{refresh_token: x", 0o600, "not JSON: Expecting property name enclosed in double quotes (line 1)"),
    ('{"access_token": "a"}', 0o600, "holds no refresh_token"),
    (json.dumps(GOOD), 0o644, "mode 0644: a refresh token must be readable by its owner only (chmod 600)"),
    (json.dumps(GOOD), 0o640, "mode 0640: a refresh token must be readable by its owner only (chmod 600)"),
    (json.dumps({**GOOD, "access_token": "a", "expires_at": "tomorrow"}), 0o600,
     "expires_at 'tomorrow' is not an ISO 8601 time such as 2026-03-02T09:00:00+00:00 "
     "(`mailtriage oauth login support` writes the file again)"),
    (json.dumps({**GOOD, "refreshed_at": 1772442000}), 0o600,
     "refreshed_at '1772442000' is not an ISO 8601 time such as 2026-03-02T09:00:00+00:00 "
     "(`mailtriage oauth login support` writes the file again)"),
    (json.dumps({**GOOD, "access_token": ["a"]}), 0o600, "access_token is not a string"),
])
def test_a_broken_token_file_is_file_colon_what_is_wrong(tmp_path, content, mode, message):
    path = tmp_path / "support.token"
    if content is not None:
        path.write_text(content)
        path.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        read_token_file(path, "support")
    assert [str(p) for p in caught.value.problems] == [f"{path}: {message}"]


def test_a_token_file_with_a_bad_expiry_is_a_config_error_for_the_outbox_not_a_crash(tmp_path):
    """The outbox and the IMAP watchers catch MailtriageError (ConfigError is one), not ValueError."""
    from mailtriage.config.values import OAuth2Account
    from mailtriage.oauth2.tokens import TokenSource

    path = tmp_path / "support.token"
    write_token_file(path, {**GOOD, "access_token": "a", "expires_at": "2026-13-45T99:00:00+00:00"})
    account = OAuth2Account("support", "support@example.test", OAuth2Settings(
        token_url="http://127.0.0.1:9/token", scope="mail", client_id="c", token_file=str(path)))
    with pytest.raises(ConfigError, match=rf"{path}: expires_at '2026-13-45T99:00:00\+00:00' is not an ISO 8601"):
        TokenSource(account, path).access_token()


def test_an_access_token_whose_expiry_cannot_be_read_is_not_fresh():
    from mailtriage.oauth2.tokens import fresh

    now = 1772442000.0                                             # 2026-03-02T09:00:00Z
    assert fresh({"access_token": "a", "expires_at": "2026-03-02T10:00:00+00:00"}, now)
    assert not fresh({"access_token": "a", "expires_at": "2026-03-02T09:00:30+00:00",               # within the
                      "refreshed_at": "2026-03-02T08:00:30+00:00"}, now)                           # leeway
    assert fresh({"access_token": "a", "expires_at": "2026-03-02T10:00:00"}, now)   # no offset: UTC, not local
    for bad in ("soon", 3600, ["2026-03-02T10:00:00+00:00"]):                 # as if expired: refreshed
        assert not fresh({"access_token": "a", "expires_at": bad}, now), bad
    assert fresh({"access_token": "a", "expires_at": "2026-03-02T10:00:00+00:00", "refreshed_at": "x"}, now)


def test_an_unreadable_token_file(tmp_path):
    path = tmp_path / "support.token"
    path.mkdir()                    # the tests run as root, which reads any mode: a folder cannot be read
    with pytest.raises(ConfigError, match=rf"{path}: cannot be read: Is a directory"):
        read_token_file(path, "support")


def test_config_problems_cover_the_token_file_and_the_client_secret(tmp_path, monkeypatch):
    config = _oauth2_site(tmp_path)
    monkeypatch.delenv("MT_TEST_OAUTH_SECRET", raising=False)
    problems = oauth2_problems(load_settings(config))
    token = tmp_path / "site" / "support.token"
    assert problems == [Problem(str(token), 0, "no such file (`mailtriage oauth login support` writes it)"),
                        Problem("<environment>", 0, "MT_TEST_OAUTH_SECRET is not set")]
    write_token_file(token, GOOD)
    monkeypatch.setenv("MT_TEST_OAUTH_SECRET", "s")
    assert oauth2_problems(load_settings(config)) == []


def test_a_token_file_is_written_0600_whatever_the_umask_and_replaced_whole(tmp_path):
    path = tmp_path / "state" / "support.token"
    old = os.umask(0)
    try:
        write_token_file(path, GOOD)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(TypeError):
        write_token_file(path, {"refresh_token": object()})     # cannot be written: the old file stays
    assert read_token_file(path) == GOOD
    assert sorted(p.name for p in path.parent.iterdir()) == ["support.token"]
    with locked(path):
        write_token_file(path, {"refresh_token": "rt-2"})
    assert read_token_file(path) == {"refresh_token": "rt-2"}


def _oauth2_site(tmp_path: Path, mailbox_oauth2: dict | None = None) -> Path:
    site = make_site(tmp_path / "site")
    data = yaml.safe_load(site.config.read_text())
    oauth2 = {"token_url": "http://127.0.0.1:9/token", "scope": "mail", "client_id": "mailtriage",
              "client_secret_env": "MT_TEST_OAUTH_SECRET", "token_file": "support.token"}
    data["mailboxes"][0]["imap"] = {"host": "127.0.0.1", "username": "support@example.test", "auth": "oauth2"}
    data["mailboxes"][0]["oauth2"] = mailbox_oauth2 or oauth2
    data["smtp_out"] = {"host": "127.0.0.1", "port": 25, "username": "support@example.test", "auth": "oauth2",
                        "oauth2": oauth2}
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return site.config


def test_oauth_login_for_a_gmail_mailbox_says_why_it_cannot(tmp_path):
    from mailtriage.config.values import OAuth2Account
    from mailtriage.errors import UsageError
    from mailtriage.oauth2.device import login

    account = OAuth2Account("support", "support@example.test",
                            OAuth2Settings(provider="google", client_id="c", token_file="t"))
    with pytest.raises(UsageError, match="Google's device flow does not allow the Gmail scope"):
        login(account, tmp_path / "t", print)
    assert not (tmp_path / "t").exists()
