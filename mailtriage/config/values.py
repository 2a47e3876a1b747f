"""Configuration values: the frozen types the rest of mailtriage reads.

Each key of `mailtriage.yaml` is declared here with its type and default
(pydantic checks them); `config.load` reads the YAML and the environment and
turns problems into `FILE:LINE: message`. Nothing here touches a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from mailtriage.config.fields import (ADDRESS, Address, Duration, Frozen, MatrixRow, Percent, Size, TimeOfDay,
                                      address_of, config_path)
from mailtriage.config.oauth2 import AuthMethod, OAuth2Settings, xoauth2_user
from mailtriage.mail.tokens import DEFAULT_LENGTH, Signer
from mailtriage.model import Level, Severity, Tier

SHARED_LOOP_ID = "mailtriage"     # every install's X-Loop before it was its own; now only without mailboxes
_Frozen = Frozen


class ImapSettings(_Frozen):
    host: str
    port: int = 993
    ssl: bool = True
    username: str
    auth: AuthMethod = "password"                   # oauth2: XOAUTH2 with the mailbox's `oauth2:`
    password_env: str | None = None
    password_file: str | None = None
    folder: str = "INBOX"
    processed_folder: str | None = None
    idle: bool = True
    poll_interval: Duration = timedelta(seconds=60)
    history_age: Duration = timedelta(days=1)      # first look: older mail is taken in as history


class Mailbox(_Frozen):
    name: str
    address: Address
    comment_address: Address | None = None
    queue: str = "support"
    from_name: str = "Support"
    imap: ImapSettings | None = None
    oauth2: OAuth2Settings | None = None            # for `imap.auth: oauth2`

    @model_validator(mode="after")
    def _oauth2_block(self) -> Mailbox:
        if self.imap is not None and self.imap.auth == "oauth2":
            if self.oauth2 is None:
                raise ValueError("imap.auth is oauth2, but the mailbox has no oauth2: block")
            xoauth2_user(self.imap.username, self.oauth2, "imap.username")
        return self


class SmtpIn(_Frozen):
    host: str = "127.0.0.1"
    port: int = 8025
    lmtp: bool = False
    max_size: Size = 25 * 1024**2


class SmtpOut(_Frozen):
    host: str = "127.0.0.1"
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_env: str | None = None
    auth: AuthMethod = "password"                   # oauth2: AUTH XOAUTH2 with `oauth2:` below
    oauth2: OAuth2Settings | None = None
    maildir: str | None = None
    timeout: Duration = timedelta(seconds=30)
    retry_first: Duration = timedelta(minutes=1)    # after a 4xx or a connection error; doubles …
    retry_max: Duration = timedelta(hours=1)        # … up to this
    max_attempts: int = Field(default=12, ge=1)     # then the mail is given up with an event on the ticket
    lease: Duration | None = None                   # a daemon that dies mid-send leaves the mail to
                                                    # another after this; default 4 × timeout, at least 2m

    @model_validator(mode="after")
    def _oauth2_block(self) -> SmtpOut:
        if self.auth == "oauth2" and not self.maildir:
            if self.oauth2 is None or not self.username:
                raise ValueError("auth is oauth2: username and an oauth2: block are required")
            xoauth2_user(self.username, self.oauth2, "username")
        return self


class Agent(_Frozen):
    email: str                       # an address, or @domain for a whole domain
    name: str = ""
    tier: Tier = Tier.L1

    @field_validator("email", mode="before")
    @classmethod
    def _email_or_domain(cls, value: Any) -> str:
        text = str(value).strip().lower()
        if text.startswith("@") and "." in text and " " not in text:
            return text
        return address_of(text)


class TierSettings(_Frozen):
    notify: list[Address] = Field(default_factory=list)
    calendar: str | None = None      # hold SLA notices (except S1) until this calendar's working hours


class Target(_Frozen):
    first_response: Duration
    resolution: Duration
    next_update: Duration | None = None
    calendar: str = "always"


class SlaSettings(_Frozen):
    warn_at: Percent = 0.8
    targets: dict[Severity, Target]


class AgentAuth(_Frozen):
    authserv_ids: list[str] = Field(default_factory=list)
    require: Literal["dkim", "spf", "dkim_or_spf", "none"] = "dkim_or_spf"


# What mails the assignee (or else the ticket's tier's notify list): a new ticket,
# a customer's reply, an internal note, an assignment, a move to another tier.
NoticeReason = Literal["new", "reply", "note", "assigned", "tier"]
NOTICE_REASONS: tuple[NoticeReason, ...] = ("new", "reply", "note", "assigned", "tier")


class AutoReply(_Frozen):
    """Acknowledgements and other automatic replies to customers."""

    enabled: bool = True
    per_sender_limit: int = 5        # at most this many automatic replies …
    per_sender_window: Duration = timedelta(hours=1)   # … to one sender in this window


class HttpSettings(_Frozen):
    """The daemon's HTTP listener (`/metrics`, `/healthz`, the board at `/`).
    `users_file`: `name:hash` lines (`mailtriage users add NAME`); without
    it the board is open to whoever reaches `listen`. `secure_cookies`: the
    session cookie is sent over HTTPS only (set it behind a TLS proxy)."""

    listen: str                      # host:port, e.g. 127.0.0.1:9464 (off without `http:`)
    users_file: str | None = None
    secure_cookies: bool = False

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:9464)")
        return value


class Limits(_Frozen):
    """What one message may be; a message over a limit is stored raw and
    quarantined (`quarantined:limit:size`, …), never half-processed. Over
    `max_hops` it is a mail loop instead: automatic mail (`hop-count`)."""

    max_message_size: Size = 25 * 1024**2
    max_headers: int = Field(default=1000, gt=0)       # header fields at the top level
    max_parts: int = Field(default=1000, gt=0)         # MIME parts, enclosed messages included
    max_depth: int = Field(default=50, gt=0)           # nesting of multiparts and enclosed messages
    max_attachment_size: Size = 20 * 1024**2           # one attachment, decoded
    # Received headers; more is a loop (guards.MAX_HOPS, Postfix's hopcount_limit).
    # RFC 5321 section 6.3 asks for at least 100 where mail is bounced on it; ours is only ignored.
    max_hops: int = Field(default=50, gt=0)


class ReplyTokens(_Frozen):
    """Signed plus-addresses in Reply-To (mail.tokens); the secret comes from
    the environment variable `secret_env`, never from the file."""

    secret_env: str = Field(min_length=1)
    length: int = Field(default=DEFAULT_LENGTH, ge=8, le=52)    # base32 characters of the signature
    # Set by the loader from the environment; excluded from dumps, shown as ********** in reprs.
    secret: SecretStr | None = Field(default=None, exclude=True, repr=False)


class Digest(_Frozen):
    """The daily digest to the team lead (sla/digest.py): on each working day of
    `calendar`, at `at` local time in that calendar's time zone."""

    to: list[Address] = Field(min_length=1)
    at: TimeOfDay = time(8, 0)
    calendar: str


class AlertSettings(_Frozen):
    to: list[Address] = Field(min_length=1)     # one mail when a component has failed for `after`,
    after: Duration = timedelta(minutes=5)      # one when it recovers


class Settings(_Frozen):
    database: str = "sqlite:///mailtriage.db"
    ticket_prefix: str = "MT"
    mailboxes: list[Mailbox] = Field(default_factory=list)
    smtp_in: SmtpIn = SmtpIn()
    smtp_out: SmtpOut = SmtpOut(maildir="./outbox")
    agents: list[Agent] = Field(default_factory=list)
    tiers: dict[Tier, TierSettings] = Field(default_factory=dict)
    calendars: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sla: SlaSettings
    rules: str | None = None         # None: rules.yaml beside the config if there is one, else the built-in
    templates: str | None = None     # None: the built-in templates (config/builtin.py)
    # impact → [severity at urgency high, medium, low] (classify/priority.py); None: rules' severity only
    priority_matrix: dict[Level, MatrixRow] | None = None
    knowledge_base: str | None = None   # a folder of Markdown articles the acknowledgement suggests (mailtriage.kb)
    default_language: str = "en"     # a ticket's language when neither Content-Language nor the text tells
    agent_auth: AgentAuth = AgentAuth()
    agent_notices: list[NoticeReason] = Field(default_factory=lambda: list(NOTICE_REASONS))
    # The customer's files ride along on agents' notices up to this total (each is listed anyway); 0: list only.
    agent_notice_attachments: Size = 10 * 1024**2
    auto_reply: AutoReply = AutoReply()
    limits: Limits = Limits()
    http: HttpSettings | None = None     # off unless configured
    reply_tokens: ReplyTokens | None = None
    digest: Digest | None = None     # the daily digest; None: none is sent
    alerts: AlertSettings | None = None
    loop_id: str = ""                # our X-Loop; not in the file: the first mailbox's address (_unique_loop_id)
    base_dir: str = "."              # set by the loader: where relative paths start

    @model_validator(mode="before")
    @classmethod
    def _unique_loop_id(cls, data: Any) -> Any:
        """Without `loop_id`, the first mailbox's address: each install has its
        own, so another mailtriage (a customer's, the L4 vendor's) does not take
        our mail for its own and drop it as a loop."""
        if not isinstance(data, dict) or data.get("loop_id"):
            return data
        mailboxes = data.get("mailboxes")
        first = mailboxes[0] if isinstance(mailboxes, list) and mailboxes else None
        address = first.get("address") if isinstance(first, dict) else getattr(first, "address", None)
        return {**data, "loop_id": str(address).strip().lower() if address else SHARED_LOOP_ID}

    @field_validator("priority_matrix")
    @classmethod
    def _whole_matrix(cls, value: dict[Level, list[Severity]] | None) -> dict[Level, list[Severity]] | None:
        missing = [level.value for level in Level if value is not None and level not in value]
        if missing:
            raise ValueError(f"missing row(s) {', '.join(missing)}: the matrix needs a row for each impact "
                             "(high, medium, low), each [severity at urgency high, medium, low]")
        return value

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2,3}", value):
            raise ValueError("default_language must be a primary language tag: two or three letters (en, nl, ru)")
        return value.lower()

    @field_validator("ticket_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,15}", value):
            raise ValueError("ticket_prefix must be letters and digits, starting with a letter")
        return value

    def path(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return config_path(self.base_dir, relative)

    @property
    def signer(self) -> Signer | None:
        """Signs and checks reply tokens; None when `reply_tokens` is off."""
        tokens = self.reply_tokens
        if tokens is None or tokens.secret is None:
            return None
        return Signer(tokens.secret.get_secret_value().encode("utf-8"), self.ticket_prefix, tokens.length)

    @property
    def own_addresses(self) -> frozenset[str]:
        found = {m.address for m in self.mailboxes}
        found |= {m.comment_address for m in self.mailboxes if m.comment_address}
        return frozenset(found)


@dataclass(frozen=True)
class OAuth2Account:
    """Who logs in with one token: a mailbox's IMAP login, or smtp_out's."""

    name: str                        # the mailbox's name, or "smtp_out"
    user: str                        # the XOAUTH2 user name
    oauth2: OAuth2Settings


def oauth2_accounts(settings: Settings) -> list[OAuth2Account]:
    """Every login that uses OAuth2, in the config's order."""
    found = [OAuth2Account(m.name, m.imap.username, m.oauth2) for m in settings.mailboxes
             if m.imap is not None and m.imap.auth == "oauth2" and m.oauth2 is not None]
    out = settings.smtp_out
    if out.auth == "oauth2" and out.oauth2 is not None and out.username and not out.maildir:
        found.append(OAuth2Account("smtp_out", out.username, out.oauth2))
    return found


# -- lookups on these values ---------------------------------------------------

def agent_for(address: str, agents: list[Agent]) -> Agent | None:
    """The agent entry an address belongs to (exact address first, then @domain)."""
    address = address.lower()
    for agent in agents:
        if agent.email == address:
            return agent
    domain = "@" + address.partition("@")[2]
    for agent in agents:
        if agent.email == domain:
            return agent
    return None


def find_agent(who: str, agents: list[Agent]) -> str | None:
    """The address `#assign WHO` means: an agent's address (or one in an agent
    domain), or an agent's name (case-insensitive); None when nobody matches."""
    who = who.strip().lower()
    if "@" in who and not who.startswith("@"):
        return who if agent_for(who, agents) is not None else None
    for agent in agents:
        if agent.name.lower() == who and not agent.email.startswith("@"):
            return agent.email
    for agent in agents:
        if not agent.email.startswith("@") and agent.email.partition("@")[0] == who:
            return agent.email
    return None
