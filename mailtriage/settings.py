"""Configuration: the YAML an admin edits, validated up front into frozen values.

`load_settings(path)` reads `mailtriage.yaml` (or the embedded defaults when
there is none), checks every key with pydantic, builds the calendars, and
reports each problem as `FILE:LINE: message`. Rules and templates are loaded
by their own modules from the paths named here (see app.py).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from mailtriage import yamlsrc
from mailtriage.errors import ConfigError, Problem
from mailtriage.model import Severity, Tier
from mailtriage.sla.durations import parse_duration, parse_percent

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+$")


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    return parse_duration(str(value))


def _percent(value: Any) -> float:
    return parse_percent(value if isinstance(value, (int, float)) else str(value))


def _address(value: Any) -> str:
    text = str(value).strip().lower()
    if not ADDRESS.match(text):
        raise ValueError(f"{value!r} is not an email address")
    return text


def _size(value: Any) -> int:
    """`25MB`, `512KB`, `1GB` or a plain number of bytes."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?B?)\s*", str(value), re.IGNORECASE)
    if not match:
        raise ValueError(f"{value!r} is not a size (use e.g. 25MB, 512KB)")
    unit = match.group(2).upper().rstrip("B")
    return int(match.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Percent = Annotated[float, BeforeValidator(_percent)]
Address = Annotated[str, BeforeValidator(_address)]
Size = Annotated[int, BeforeValidator(_size)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImapSettings(_Frozen):
    host: str
    port: int = 993
    ssl: bool = True
    username: str
    password_env: str | None = None
    password_file: str | None = None
    folder: str = "INBOX"
    processed_folder: str | None = None
    idle: bool = True
    poll_interval: Duration = timedelta(seconds=60)

    def password(self) -> str:
        """From the environment or a file: never from the YAML itself."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(Problem("<environment>", 0, f"{self.password_env} is not set"))
            return value
        if self.password_file:
            return Path(self.password_file).read_text(encoding="utf-8").strip()
        raise ConfigError(Problem("<config>", 0, f"imap {self.username}: no password_env or password_file"))


class Mailbox(_Frozen):
    name: str
    address: Address
    comment_address: Address | None = None
    queue: str = "support"
    from_name: str = "Support"
    imap: ImapSettings | None = None


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
    maildir: str | None = None
    timeout: Duration = timedelta(seconds=30)
    retry_first: Duration = timedelta(minutes=1)    # after a 4xx or a connection error; doubles …
    retry_max: Duration = timedelta(hours=1)        # … up to this
    max_attempts: int = Field(default=12, ge=1)     # then the mail is given up with an event on the ticket
    lease: Duration | None = None                   # a daemon that dies mid-send leaves the mail to
                                                    # another after this; default 4 × timeout, at least 2m


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
        return _address(text)


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


class Limits(_Frozen):
    """What one message may be; a message over a limit is stored raw and
    quarantined (`quarantined:limit:size`, …), never half-processed."""

    max_message_size: Size = 25 * 1024**2
    max_headers: int = Field(default=1000, gt=0)       # header fields at the top level
    max_parts: int = Field(default=1000, gt=0)         # MIME parts, enclosed messages included
    max_depth: int = Field(default=50, gt=0)           # nesting of multiparts and enclosed messages
    max_attachment_size: Size = 20 * 1024**2           # one attachment, decoded


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
    rules: str = "rules.yaml"
    templates: str = "templates/"
    agent_auth: AgentAuth = AgentAuth()
    agent_notices: list[NoticeReason] = Field(default_factory=lambda: list(NOTICE_REASONS))
    auto_reply: AutoReply = AutoReply()
    limits: Limits = Limits()
    loop_id: str = "mailtriage"
    base_dir: str = "."              # set by the loader: where relative paths start

    @field_validator("ticket_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,15}", value):
            raise ValueError("ticket_prefix must be letters and digits, starting with a letter")
        return value

    def path(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        candidate = Path(os.path.expanduser(relative))
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    @property
    def own_addresses(self) -> frozenset[str]:
        found = {m.address for m in self.mailboxes}
        found |= {m.comment_address for m in self.mailboxes if m.comment_address}
        return frozenset(found)


def default_config_path() -> Path | None:
    """`$MAILTRIAGE_CONFIG`, else `./mailtriage.yaml`, else None (embedded defaults)."""
    env = os.environ.get("MAILTRIAGE_CONFIG")
    if env:
        return Path(env)
    local = Path("mailtriage.yaml")
    return local if local.exists() else None


def load_settings(path: Path | None) -> Settings:
    """Load and validate a config file, or the embedded defaults for None."""
    if path is None:
        data, locator = yamlsrc.load(DEFAULTS_DIR / "mailtriage.yaml")
        base = DEFAULTS_DIR
        data = dict(data or {})
        data["base_dir"] = str(base)
        # The embedded defaults keep their state in the working directory.
        data["database"] = _resolve_sqlite("sqlite:///mailtriage.db", Path.cwd())
        settings = _validate(data, locator)
        return settings.model_copy(update={"smtp_out": SmtpOut(maildir=str(Path.cwd() / "outbox"))})
    data, locator = yamlsrc.load(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(locator.problem((), "the config must be a mapping of keys"))
    data = dict(data)
    if "base_dir" in data:
        raise ConfigError(locator.problem(("base_dir",), "base_dir is set by mailtriage, not in the file"))
    data["base_dir"] = str(path.resolve().parent)
    return _validate(data, locator)


def _resolve_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path in a config file starts at that file's folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/") or ":memory:" in url or url == prefix:
        return url
    return prefix + str((base / url[len(prefix):]).resolve())


def _validate(data: dict[str, Any], locator: yamlsrc.Locator) -> Settings:
    if os.environ.get("MAILTRIAGE_DATABASE"):
        data["database"] = os.environ["MAILTRIAGE_DATABASE"]   # deployments and the test suite
    if isinstance(data.get("database"), str):
        data["database"] = _resolve_sqlite(data["database"], Path(data["base_dir"]))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error, locator) for error in exc.errors()]
        raise ConfigError(problems + _raw_calendar_references(data, locator)) from exc
    problems = check_references(settings, locator)
    if problems:
        raise ConfigError(problems)
    return settings


def _problem(error: Any, locator: yamlsrc.Locator) -> Problem:
    loc = tuple(error["loc"])
    where = ".".join(str(part) for part in loc) or "config"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (see the example that `mailtriage init` writes)"
    elif error["type"] == "missing":
        message = "is required"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return locator.problem(loc, f"{where}: {message}")


def _raw_calendar_references(data: dict[str, Any], locator: yamlsrc.Locator) -> list[Problem]:
    """The calendar names SLA targets use, checked even when other keys are invalid."""
    calendars: dict[str, Any] = data["calendars"] if isinstance(data.get("calendars"), dict) else {}
    targets = (data.get("sla") or {}).get("targets") if isinstance(data.get("sla"), dict) else None
    problems = []
    for severity, target in (targets or {}).items() if isinstance(targets, dict) else ():
        name = target.get("calendar", "always") if isinstance(target, dict) else None
        if isinstance(name, str) and name not in calendars:
            problems.append(locator.problem(("sla", "targets", severity, "calendar"),
                                            f"sla.targets.{severity}: no calendar named {name!r}"))
    return problems


def raw_paths(path: Path | None) -> tuple[Path, Path]:
    """Where the rules and templates are, read without validating the rest
    (so `config check` can report their problems next to the config's)."""
    if path is None:
        return DEFAULTS_DIR / "rules.yaml", DEFAULTS_DIR / "templates"
    try:
        data, _ = yamlsrc.load(path)
    except ConfigError:
        data = None
    data = data if isinstance(data, dict) else {}
    base = path.resolve().parent
    rules, templates = data.get("rules", "rules.yaml"), data.get("templates", "templates/")
    return base / str(rules), base / str(templates)


def check_references(settings: Settings, locator: yamlsrc.Locator) -> list[Problem]:
    """Cross-key checks pydantic cannot do alone: calendars named by SLA targets."""
    from mailtriage.sla.calendar import calendar_from_config

    problems: list[Problem] = []
    for name, data in settings.calendars.items():
        try:
            calendar_from_config(name, data)
        except (ValueError, TypeError, KeyError) as exc:
            where = ("calendars", name) + tuple(getattr(exc, "path", ()))
            problems.append(locator.problem(where, f"calendar {name}: {exc}"))
    for severity, target in settings.sla.targets.items():
        if target.calendar not in settings.calendars:
            problems.append(locator.problem(
                ("sla", "targets", severity.value, "calendar"),
                f"sla.targets.{severity.value}: no calendar named {target.calendar!r}"))
    for tier, tier_settings in settings.tiers.items():
        if tier_settings.calendar is not None and tier_settings.calendar not in settings.calendars:
            problems.append(locator.problem(
                ("tiers", tier.value, "calendar"),
                f"tiers.{tier.value}: no calendar named {tier_settings.calendar!r}"))
    missing = [s.value for s in Severity if s not in settings.sla.targets]
    if missing:
        problems.append(locator.problem(("sla", "targets"), f"sla.targets: missing {', '.join(missing)}"))
    names = [m.name for m in settings.mailboxes]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append(locator.problem(("mailboxes", index, "name"), f"mailbox name {name!r} is used twice"))
    return problems
