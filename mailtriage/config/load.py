"""Configuration loading: `mailtriage.yaml` and the environment → `Settings`.

    config file (YAML, with line numbers) + MAILTRIAGE_DATABASE ─► validate ─► Settings

`load_settings(path)` reads the file (or the embedded defaults, the built-in
`config/mailtriage.yaml`, when there is none), checks every key against
`config.values` and the keys against each other (`config.checks`), and
reports each problem as `FILE:LINE: message`. Secrets are read here too,
never from the YAML: passwords and OAuth2 client secrets from the
environment or a file, refresh tokens from each `token_file`. Rules and
templates are loaded by their own modules from the paths `named_paths` gives
(see app.py): a config that names none uses the built-in ones.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from mailtriage.config import checks, yamlsrc
from mailtriage.config.builtin import builtin
from mailtriage.config.fields import config_path
from mailtriage.config.oauth2 import OAuth2Settings
from mailtriage.config.values import ImapSettings, Settings, SmtpOut, oauth2_accounts
from mailtriage.errors import ConfigError, Problem


def default_config_path() -> Path | None:
    """`$MAILTRIAGE_CONFIG`, else `./mailtriage.yaml`, else None (embedded defaults)."""
    env = os.environ.get("MAILTRIAGE_CONFIG")
    if env:
        return Path(env)
    local = Path("mailtriage.yaml")
    return local if local.exists() else None


def load_settings(path: Path | None) -> Settings:
    """Load and validate a config file, or the embedded defaults for None."""
    return load_checked(path)[0]


def load_checked(path: Path | None) -> tuple[Settings, list[Problem]]:
    """The same, with the warnings about it (checks.warnings): a config that
    works but loses notices or mail without a word."""
    if path is None:
        return _embedded_defaults()
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


def _embedded_defaults() -> tuple[Settings, list[Problem]]:
    """The built-in config/mailtriage.yaml, with its state in the working directory."""
    folder = builtin("config")
    data, locator = yamlsrc.load(folder / "mailtriage.yaml")
    data = dict(data or {})
    data["base_dir"] = str(folder)
    # The example names the templates/ folder `init` writes beside it; here it is the built-in one.
    data.pop("templates", None)
    data["database"] = _resolve_sqlite("sqlite:///mailtriage.db", Path.cwd())
    settings, warnings = _validate(data, locator)
    return settings.model_copy(update={"smtp_out": SmtpOut(maildir=str(Path.cwd() / "outbox"))}), warnings


def _resolve_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path in a config file starts at that file's folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/") or ":memory:" in url or url == prefix:
        return url
    return prefix + str((base / url[len(prefix):]).resolve())


def _validate(data: dict[str, Any], locator: yamlsrc.Locator) -> tuple[Settings, list[Problem]]:
    if os.environ.get("MAILTRIAGE_DATABASE"):
        data["database"] = os.environ["MAILTRIAGE_DATABASE"]   # deployments and the test suite
    if isinstance(data.get("database"), str):
        data["database"] = _resolve_sqlite(data["database"], Path(data["base_dir"]))
    missing = _missing_folder(data, locator, "templates") + _missing_folder(data, locator, "knowledge_base")
    missing += _secret_in_file(data, locator)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error, locator) for error in exc.errors()]
        raise ConfigError(problems + _raw_calendar_references(data, locator) + missing) from exc
    settings, secret_problems = _with_reply_secret(settings, locator)
    problems = checks.problems(settings, locator) + missing + secret_problems
    if problems:
        raise ConfigError(problems)
    return _with_password_files(settings), checks.warnings(settings, locator)


def _secret_in_file(data: dict[str, Any], locator: yamlsrc.Locator) -> list[Problem]:
    tokens = data.get("reply_tokens")
    if isinstance(tokens, dict) and "secret" in tokens:
        return [locator.problem(("reply_tokens", "secret"), (
            "reply_tokens.secret: the secret is never written in the config file; name the environment "
            "variable that holds it (secret_env: MT_REPLY_SECRET)"))]
    return []


def _with_reply_secret(settings: Settings, locator: yamlsrc.Locator) -> tuple[Settings, list[Problem]]:
    """The reply tokens' secret from the environment; unset or empty is a
    problem at `secret_env` (the value itself is never logged or shown)."""
    tokens = settings.reply_tokens
    if tokens is None:
        return settings, []
    value = os.environ.get(tokens.secret_env, "")
    if not value.strip():
        state = "is not set" if tokens.secret_env not in os.environ else "is empty"
        return settings, [locator.problem(("reply_tokens", "secret_env"), (
            f"reply_tokens: the environment variable {tokens.secret_env} {state}: reply tokens need a secret "
            "(e.g. 32 random bytes: `openssl rand -base64 32`)"))]
    with_secret = tokens.model_copy(update={"secret": SecretStr(value)})
    return settings.model_copy(update={"reply_tokens": with_secret}), []


def _with_password_files(settings: Settings) -> Settings:
    """A relative `password_file` starts at the config file's folder, as every
    path in it does (not at the daemon's working directory)."""
    mailboxes = [mailbox.model_copy(update={"imap": mailbox.imap.model_copy(update={
                     "password_file": str(settings.path(mailbox.imap.password_file))})})
                 if mailbox.imap is not None and mailbox.imap.password_file else mailbox
                 for mailbox in settings.mailboxes]
    return settings.model_copy(update={"mailboxes": mailboxes})


def _problem(error: Any, locator: yamlsrc.Locator) -> Problem:
    loc = tuple(error["loc"])
    if loc and loc[-1] == "[key]":          # a mapping's key, not its value, is wrong
        loc = loc[:-1]
    where = ".".join(str(part) for part in loc) or "config"
    message = error["msg"]
    if loc[:1] == ("priority_matrix",) and error["type"] in ("too_short", "too_long"):
        message = (f"a row holds 3 severities (at urgency high, medium, low), not {len(error['input'])}"
                   if isinstance(error.get("input"), list) else message)
    elif error["type"] == "extra_forbidden":
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
    digest = data.get("digest")
    name = digest.get("calendar") if isinstance(digest, dict) else None
    if isinstance(name, str) and name not in calendars:
        problems.append(locator.problem(("digest", "calendar"), f"digest.calendar: no calendar named {name!r}"))
    return problems


def _missing_folder(data: dict[str, Any], locator: yamlsrc.Locator, key: str) -> list[Problem]:
    """A `templates:` or `knowledge_base:` folder that is not there, reported at that key's line."""
    named = data.get(key)
    if not isinstance(named, str):
        return []
    folder = config_path(data["base_dir"], named)
    return [] if folder.is_dir() else [locator.problem((key,), f"{key} folder not found: {folder}")]


def named_paths(settings: Settings) -> tuple[Path, Path | None]:
    """The rules file and the admin's templates folder (None: only the built-in templates)."""
    return _named(settings.rules, settings.templates, Path(settings.base_dir))


def raw_paths(path: Path | None) -> tuple[Path, Path | None]:
    """The same, read without validating the rest (so `config check` can
    report the rules' and templates' problems next to the config's)."""
    if path is None:
        return builtin("config") / "rules.yaml", None
    try:
        data, _ = yamlsrc.load(path)
    except ConfigError:
        data = None
    data = data if isinstance(data, dict) else {}
    return _named(data.get("rules"), data.get("templates"), path.resolve().parent)


def _named(rules: Any, templates: Any, base: Path) -> tuple[Path, Path | None]:
    """With no `rules:`, the rules.yaml beside the config when there is one
    (as before `rules:` became optional), else the built-in rules."""
    if rules is None:
        beside = base / "rules.yaml"
        rules_file = beside if beside.is_file() else builtin("config") / "rules.yaml"
    else:
        rules_file = config_path(base, str(rules))
    return rules_file, None if templates is None else config_path(base, str(templates))


def imap_password(imap: ImapSettings) -> str:
    """From the environment or a file: never from the YAML itself."""
    if imap.password_env:
        value = os.environ.get(imap.password_env)
        if value is None:
            raise ConfigError(Problem("<environment>", 0, f"{imap.password_env} is not set"))
        return value
    if imap.password_file:
        return Path(imap.password_file).read_text(encoding="utf-8").strip()
    raise ConfigError(Problem("<config>", 0, f"imap {imap.username}: no password_env or password_file"))


def smtp_password(smtp: SmtpOut) -> str | None:
    """The relay's password, from the environment; None when mail goes to a
    Maildir, the relay takes it without AUTH (no `username`) or the login is
    XOAUTH2. A username without its password fails every mail with 530, so it
    is a config error."""
    if smtp.maildir or not smtp.username or smtp.auth == "oauth2":
        return None
    if not smtp.password_env:
        raise ConfigError(Problem("<config>", 0, f"smtp_out: username {smtp.username} needs password_env"))
    value = os.environ.get(smtp.password_env)
    if value is None:
        raise ConfigError(Problem("<environment>", 0, f"smtp_out: {smtp.password_env} is not set "
                                                      f"(the password of {smtp.username} at the relay)"))
    return value


# -- OAuth2 --------------------------------------------------------------------

def read_token_file(path: Path, name: str = "NAME") -> dict[str, Any]:
    """A `token_file` as `mailtriage oauth login` writes it: JSON holding a
    `refresh_token`, readable by its owner only. Anything else is a
    ConfigError `FILE: what is wrong`."""
    def wrong(message: str) -> ConfigError:
        return ConfigError(Problem(str(path), 0, message))

    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise wrong(f"no such file (`mailtriage oauth login {name}` writes it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise wrong(f"cannot be read: {getattr(exc, 'strerror', None) or exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise wrong(f"mode {stat.S_IMODE(mode):04o}: a refresh token must be readable by its owner only "
                    f"(chmod 600)")
    if not text.strip():
        raise wrong(f"empty (`mailtriage oauth login {name}` writes it again)")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise wrong(f"not JSON: {getattr(exc, 'msg', exc)} (line {getattr(exc, 'lineno', '?')})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("refresh_token"), str) or not data["refresh_token"]:
        raise wrong("holds no refresh_token")
    for key in ("expires_at", "refreshed_at", "failing_since"):
        if data.get(key) is not None and token_instant(data[key]) is None:
            raise wrong(f"{key} {str(data[key])[:40]!r} is not an ISO 8601 time such as 2026-03-02T09:00:00+00:00 "
                        f"(`mailtriage oauth login {name}` writes the file again)")
    if data.get("access_token") is not None and not isinstance(data["access_token"], str):
        raise wrong("access_token is not a string")
    return data


def token_instant(value: object) -> datetime | None:
    """A time in a token file (UTC when it names no offset); None: not a time."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def oauth2_secret(oauth2: OAuth2Settings) -> str | None:
    """The client secret from the environment; None for a public client."""
    if oauth2.client_secret_env is None:
        return None
    value = os.environ.get(oauth2.client_secret_env)
    if value is None:
        raise ConfigError(Problem("<environment>", 0, f"{oauth2.client_secret_env} is not set"))
    return value


def oauth2_problems(settings: Settings) -> list[Problem]:
    """Each OAuth2 login's token file and client secret, checked by `config
    check` and before the daemon starts (or takes a SIGHUP's config)."""
    problems: list[Problem] = []
    seen: set[Path] = set()
    for account in oauth2_accounts(settings):
        path = settings.path(account.oauth2.token_file)
        if path not in seen:                    # a mailbox and smtp_out may share one file
            seen.add(path)
            problems += _problems(read_token_file, path, account.name)
        problems += [p for p in _problems(oauth2_secret, account.oauth2) if p not in problems]
    return problems


def _problems(check: Any, *args: Any) -> list[Problem]:
    try:
        check(*args)
    except ConfigError as exc:
        return exc.problems
    return []
