"""The App: everything a command or the daemon needs, built once and passed
down (no module-level state). cli.py and daemon.py are its only builders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from mailtriage.tickets.agents import warn_about_policy
from mailtriage.classify import load_rules
from mailtriage.clock import Clock
from mailtriage.config.loaded import Config
from mailtriage.errors import ConfigError, Problem, TemporaryFailure, one_line
from mailtriage.notify import samples
from mailtriage.notify.render import load_templates
from mailtriage.config.values import Settings
from mailtriage.config.builtin import builtin
from mailtriage.config.load import load_checked, named_paths, raw_paths
from mailtriage.sla.calendar import calendar_from_config
from mailtriage.store import Store, open_store


@dataclass
class App:
    config: Config
    clock: Clock
    store: Store

    @property
    def settings(self) -> Settings:
        return self.config.settings


def load_config(path: Path | None) -> Config:
    """Load and validate everything; all problems of rules and templates together."""
    problems: list[Problem] = []
    warnings: list[Problem] = []          # a config that works but loses something without a word
    settings: Settings | None = None
    try:
        settings, warnings = load_checked(path)
        rules_path, templates_path = named_paths(settings)
    except ConfigError as exc:
        problems.extend(exc.problems)
        rules_path, templates_path = raw_paths(path)
    rules = None
    try:
        rules = load_rules(rules_path)
    except ConfigError as exc:
        problems.extend(exc.problems)
    templates = load_templates(templates_path, builtin("templates"))
    problems.extend(templates.check())
    if problems or settings is None or rules is None:
        raise ConfigError(problems)
    calendars = {name: calendar_from_config(name, data) for name, data in settings.calendars.items()}
    kb_folder = settings.path(settings.knowledge_base) if settings.knowledge_base else None
    config = Config(settings, rules, calendars, templates, path, kb_folder, warnings=tuple(warnings))
    unrenderable = samples.problems(templates, config)     # parses, but fails for every real ticket
    if unrenderable:
        raise ConfigError(unrenderable)
    warn_about_policy(settings)           # agent_auth.require: none says so loudly, at every start
    return config


def build_app(config: Config, clock: Clock, *, auto_create: bool = True) -> App:
    return App(config, clock, _open_store(config, auto_create))


def _open_store(config: Config, auto_create: bool) -> Store:
    """The database, or why not: a URL no driver takes is configuration (exit 2,
    78 in the MTA pipe); a database that does not answer now is a
    TemporaryFailure (75, SMTP 451), so the mail waits instead of bouncing."""
    try:
        return open_store(config.settings.database, auto_create=auto_create)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        where = str(config.path) if config.path else "<embedded defaults>"
        raise ConfigError(Problem(where, 0, f"database (or MAILTRIAGE_DATABASE): unusable URL: {one_line(exc)}")) \
            from exc
    except (SQLAlchemyError, OSError) as exc:
        raise TemporaryFailure(f"database unreachable: {one_line(exc)}") from exc
