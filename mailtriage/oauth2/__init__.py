"""OAuth2 for the mail logins (SASL XOAUTH2): IMAP mailboxes and smtp_out.

    config (oauth2:) ─► TokenSource (tokens.py) ─► access token ─► ingest/imap.py connect()
                                                                 └► notify/send.py AUTH XOAUTH2
    mailtriage oauth login ─► device.py ─► token_file (tokenfile.py: atomic, 0600)

Authlib's OAuth2 client does the grants (README, "Dependencies"). The
token file is the one shared state: every process reads it under a lock
before asking the provider, and writes what it learnt back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imapclient.exceptions import LoginError

from mailtriage.config.fields import config_path
from mailtriage.config.values import Mailbox, OAuth2Account, SmtpOut
from mailtriage.oauth2.tokens import TokenSource

__all__ = ["TokenSource", "imap_tokens", "smtp_tokens", "xoauth2_login"]


def imap_tokens(mailbox: Mailbox, base_dir: str | Path) -> TokenSource | None:
    """The mailbox's token source when its IMAP login is `auth: oauth2`."""
    imap, oauth2 = mailbox.imap, mailbox.oauth2
    if imap is None or imap.auth != "oauth2" or oauth2 is None:
        return None
    return TokenSource(OAuth2Account(mailbox.name, imap.username, oauth2), config_path(base_dir, oauth2.token_file))


def xoauth2_login(client: Any, user: str, tokens: TokenSource) -> None:
    """IMAP AUTHENTICATE XOAUTH2 on an IMAPClient; a token the server rejects
    gets one refresh and one more try (it may have been revoked early, or the
    clocks disagree). The SMTP twin is notify/send.py's xoauth2_login."""
    token = tokens.access_token()
    try:
        client.oauth2_login(user, token)
    except LoginError:
        client.oauth2_login(user, tokens.refresh(rejected=token))


def smtp_tokens(smtp_out: SmtpOut, base_dir: str | Path) -> TokenSource | None:
    """smtp_out's token source when it logs in with `auth: oauth2`."""
    oauth2 = smtp_out.oauth2
    if smtp_out.auth != "oauth2" or oauth2 is None or not smtp_out.username:
        return None
    return TokenSource(OAuth2Account("smtp_out", smtp_out.username, oauth2),
                       config_path(base_dir, oauth2.token_file))
