"""How a mailbox or the relay logs in with OAuth2 (XOAUTH2): the providers'
presets and the `oauth2:` block (pure); `values.oauth2_accounts` lists the logins that use one."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import field_validator, model_validator

from mailtriage.config.fields import ADDRESS, Frozen

# How a mailbox or the relay is logged in to: a password, or an OAuth2 access
# token (SASL XOAUTH2) from the mailbox's `oauth2:` block.
AuthMethod = Literal["password", "oauth2"]

# The providers' documented endpoints and scopes (README, "OAuth2"). `{tenant}`
# is the Microsoft Entra tenant: its ID or domain, or `organizations`.
OAUTH2_PRESETS: dict[str, dict[str, str]] = {
    "microsoft": {
        "token_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "device_authorization_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
        # offline_access: a refresh token; the two Outlook scopes cover IMAP and SMTP AUTH
        # with one token, so a mailbox and smtp_out may share one token_file.
        "scope": "offline_access https://outlook.office.com/IMAP.AccessAsUser.All "
                 "https://outlook.office.com/SMTP.Send",
    },
    "google": {
        "token_url": "https://oauth2.googleapis.com/token",
        "scope": "https://mail.google.com/",       # the one scope for IMAP, POP and SMTP
        # No device_authorization_url: Google's device flow (https://oauth2.googleapis.com/device/code)
        # allows a short list of scopes, and the Gmail scope is not on it (invalid_scope).
    },
}


class OAuth2Endpoints(Frozen):
    """Where tokens come from, after the provider's preset and the explicit keys."""

    token_url: str
    scope: str
    device_authorization_url: str | None


class OAuth2Settings(Frozen):
    """One OAuth2 client and the file that holds its refresh token."""

    provider: Literal["microsoft", "google"] | None = None
    tenant: str = "organizations"                   # microsoft only
    client_id: str
    client_secret_env: str | None = None            # confidential clients; public ones have none
    token_file: str                                 # `mailtriage oauth login NAME` writes it (mode 0600)
    token_url: str | None = None                    # these three override the provider's preset,
    scope: str | None = None                        # and are required without a provider
    device_authorization_url: str | None = None

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.-]+", value):
            raise ValueError("tenant must be a tenant ID, a domain, organizations or common")
        return value

    @model_validator(mode="after")
    def _explicit_without_provider(self) -> OAuth2Settings:
        if self.provider is None and not (self.token_url and self.scope):
            raise ValueError("without a provider (microsoft, google), token_url and scope are required")
        return self

    def endpoints(self) -> OAuth2Endpoints:
        preset = {key: value.replace("{tenant}", self.tenant)
                  for key, value in OAUTH2_PRESETS.get(self.provider or "", {}).items()}
        return OAuth2Endpoints(token_url=self.token_url or preset["token_url"],
                               scope=self.scope or preset["scope"],
                               device_authorization_url=self.device_authorization_url
                               or preset.get("device_authorization_url"))


def xoauth2_user(user: str | None, oauth2: OAuth2Settings | None, where: str) -> None:
    """Microsoft and Google take the mailbox's address as the XOAUTH2 user name."""
    if oauth2 is not None and oauth2.provider and not ADDRESS.match(user or ""):
        raise ValueError(f"{where}: with provider {oauth2.provider}, the username must be "
                         f"the mailbox's email address")
