"""`mailtriage oauth login NAME` and `mailtriage oauth status [--json]`:
the OAuth2 tokens of the IMAP mailboxes and smtp_out (XOAUTH2).

`status` reads the token files, with or without a running daemon: a token
the provider refused is recorded there (`failing`) by whichever process
was refused. Exit 0 when every token is ok, 1 otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

from mailtriage.cli import common
from mailtriage.config.load import default_config_path, load_settings, read_token_file
from mailtriage.config.values import OAuth2Account, Settings, oauth2_accounts
from mailtriage.errors import ConfigError, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    oauth = sub.add_parser("oauth", help="OAuth2 tokens for IMAP and SMTP logins (XOAUTH2)")
    commands = oauth.add_subparsers(dest="sub", required=True)
    login = commands.add_parser("login", help="sign in with a device code; stores the refresh token")
    login.add_argument("name", help="a mailbox with imap.auth: oauth2, or smtp_out")
    login.set_defaults(handler=cmd_login)
    status = commands.add_parser("status", help="each token: ok, expires_at, or failing: REASON")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)


def _settings(args: argparse.Namespace) -> Settings:
    # The settings alone: `oauth login` must work while a token file is missing or refused.
    return load_settings(args.config if args.config is not None else default_config_path())


def cmd_login(args: argparse.Namespace) -> int:
    from mailtriage.oauth2.device import login

    settings = _settings(args)
    accounts = {account.name: account for account in oauth2_accounts(settings)}
    account = accounts.get(args.name)
    if account is None:
        raise UsageError(f"no OAuth2 login called {args.name!r} (these use auth: oauth2: "
                         f"{', '.join(accounts) or 'none'})")
    path = settings.path(account.oauth2.token_file)
    record = login(account, path, lambda text: print(text, flush=True))
    print(f"stored the refresh token in {path} (mode 0600); access token valid until {record['expires_at']}. "
          f"A running daemon takes it at SIGHUP.")
    return 0


def token_status(settings: Settings, account: OAuth2Account) -> dict[str, Any]:
    path = settings.path(account.oauth2.token_file)
    entry: dict[str, Any] = {"name": account.name, "user": account.user, "token_file": str(path),
                             "status": "ok", "expires_at": None, "refreshed_at": None}
    try:
        held = read_token_file(path, account.name)
    except ConfigError as exc:
        return {**entry, "status": f"failing: {exc.problems[0].message}"}
    entry.update(expires_at=held.get("expires_at") if held.get("access_token") else None,
                 refreshed_at=held.get("refreshed_at"))
    if held.get("failing"):
        entry.update(status=f"failing: {held['failing']}", since=held.get("failing_since"),
                     error_description=held.get("error_description", ""))
    return entry


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    entries = [token_status(settings, account) for account in oauth2_accounts(settings)]
    if args.json:
        common.print_json({"tokens": entries})
    elif not entries:
        print("no login uses auth: oauth2")
    for entry in entries if not args.json else ():
        expiry = f"access token until {entry['expires_at']}" if entry["expires_at"] else "no access token yet"
        print(f"{entry['name']:<12} {entry['status']}  ({entry['user']}, {expiry}, {entry['token_file']})")
    return 0 if all(entry["status"] == "ok" for entry in entries) else 1
