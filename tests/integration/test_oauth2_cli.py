"""`mailtriage oauth login` (the device-code flow against the tests' own
provider), `oauth status`, and what `config check` and `run` say about a
broken token file."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys

import pytest

from daemons import daemon_env, daemons  # noqa: F401
from mailtriage.app import load_config
from mailtriage.config.load import read_token_file
from mailtriage.config.values import oauth2_accounts
from mailtriage.errors import UsageError
from mailtriage.oauth2.device import login
from mailtriage.oauth2.tokenfile import write_token_file
from oauth2_servers import oauth2_site

USER = "support@example.test"


@pytest.fixture
def site(tmp_path, oauth2_dovecot, provider):
    return oauth2_site(tmp_path / "site", oauth2_dovecot, provider)


def test_oauth_login_prints_the_url_and_code_waits_for_the_sign_in_and_stores_the_token(site, provider):
    command = [sys.executable, "-m", "mailtriage", "--config", str(site.config), "oauth", "login", "support"]
    proc = subprocess.Popen(command, env=daemon_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert f"open {provider.url}/activate and enter the code" in first
        code = re.search(r"enter the code (\d+)", first).group(1)
        provider.approve(code, USER)                    # the person signs in on their phone
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    path = site.dir / "support.token"
    assert f"stored the refresh token in {path} (mode 0600)" in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert provider.live(read_token_file(path)["refresh_token"])
    [status] = json.loads(site.ok("oauth", "status", "--json"))["tokens"]
    assert (status["name"], status["user"], status["status"]) == ("support", USER, "ok")
    assert status["expires_at"] is not None


def test_device_login_polls_as_the_server_asks(site, provider):
    """authorization_pending: wait the interval; slow_down: 5 s longer from then on (RFC 8628 3.5)."""
    provider.slow_down_once = True
    [account] = oauth2_accounts(load_config(site.config).settings)
    said, slept = [], []

    def sleep(seconds: float) -> None:             # the person is slow: signs in at the second wait
        slept.append(seconds)
        if len(slept) == 2:
            provider.approve(re.search(r"code (\d+)", said[0]).group(1), USER)

    record = login(account, site.dir / "support.token", said.append, sleep=sleep)
    assert slept == [6.0, 6.0]
    assert provider.grants("urn:ietf:params:oauth:grant-type:device_code") == 3
    assert read_token_file(site.dir / "support.token")["refresh_token"] == record["refresh_token"]


def test_a_declined_sign_in_is_an_error_and_writes_nothing(site, provider):
    [account] = oauth2_accounts(load_config(site.config).settings)
    said: list[str] = []

    def sleep(_seconds: float) -> None:
        provider.approve(re.search(r"code (\d+)", said[0]).group(1), None)      # "No, don't allow"

    with pytest.raises(UsageError, match="the sign-in was declined"):
        login(account, site.dir / "support.token", said.append, sleep=sleep)
    assert not (site.dir / "support.token").exists()


def test_oauth_login_names_the_logins_there_are(site, provider):
    code, _out, err = site.cli("oauth", "login", "nobody")
    assert code == 2 and "no OAuth2 login called 'nobody' (these use auth: oauth2: support)" in err


@pytest.mark.parametrize("content, mode, message", [
    ("", 0o600, "empty (`mailtriage oauth login support` writes it again)"),
    ("not json", 0o600, "not JSON: Expecting value (line 1)"),
    ('{"refresh_token": "rt"}', 0o604, "mode 0604: a refresh token must be readable by its owner only (chmod 600)"),
    (None, 0o600, "cannot be read: Is a directory"),
])
def test_a_broken_token_file_stops_config_check_and_the_daemon(site, daemons, content, mode,  # noqa: F811
                                                              message):
    path = site.dir / "support.token"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
        path.chmod(mode)
    code, _out, err = site.cli("config", "check")
    assert (code, err.strip()) == (2, f"{path}: {message}")
    status = json.loads(site.cli("oauth", "status", "--json")[1])["tokens"][0]["status"]
    assert status == f"failing: {message}"

    daemon = daemons(site)
    assert daemon.proc.wait(20) == 2
    assert f"{path}: {message}" in daemon.log()


def test_config_check_passes_with_a_good_token_file(site, provider):
    write_token_file(site.dir / "support.token", {"refresh_token": provider.issue(USER)})
    assert site.ok("config", "check").startswith("ok:")
