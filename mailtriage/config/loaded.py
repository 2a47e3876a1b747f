"""The loaded configuration: settings plus what they name (rules, calendars,
templates), all validated. `app.load_config()` builds it; the ticket step,
the SLA sweep and the notices read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailtriage.classify.rules import RuleSet
from mailtriage.config.values import Settings
from mailtriage.notify.render import Templates
from mailtriage.sla.calendar import Calendar


@dataclass
class Config:
    """Settings plus what they name: rules, calendars, templates — all validated."""

    settings: Settings
    rules: RuleSet
    calendars: dict[str, Calendar]
    templates: Templates
    path: Path | None = None
