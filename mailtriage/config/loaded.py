"""The loaded configuration: settings plus what they name (rules, calendars,
templates, the knowledge base), all validated. `app.load_config()` builds it;
the ticket step, the SLA sweep and the notices read it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mailtriage.classify.rules import RuleSet
from mailtriage.config.values import Settings
from mailtriage.errors import Problem
from mailtriage.mail.language import CANDIDATES, Detector
from mailtriage.notify.render import Templates
from mailtriage.sla.calendar import Calendar

if TYPE_CHECKING:
    from mailtriage.kb.index import KnowledgeBase


@dataclass
class Config:
    """Settings plus what they name: rules, calendars, templates — all validated."""

    settings: Settings
    rules: RuleSet
    calendars: dict[str, Calendar]
    templates: Templates
    path: Path | None = None
    kb_folder: Path | None = None    # `knowledge_base:`; None: no suggestions
    warnings: tuple[Problem, ...] = ()     # works, but loses something without a word (config.checks)

    @cached_property
    def kb(self) -> KnowledgeBase:
        """The knowledge base's index, built on first use: the daemon builds it at
        start and on SIGHUP; a CLI command pays only if it acknowledges a mail.
        A broken article is logged and left out, never fatal (kb.load)."""
        # Imported here: bm25s and numpy take a noticeable time to import, and
        # only a site with a knowledge base, and only a command that needs it, should pay.
        from mailtriage.kb.index import EMPTY
        from mailtriage.kb.load import load_knowledge_base

        return EMPTY if self.kb_folder is None else load_knowledge_base(self.kb_folder)

    @cached_property
    def detector(self) -> Detector:
        """The language detector (mail.language); its model loads at the first mail it reads."""
        return Detector(CANDIDATES + (self.settings.default_language,))

    def build_kb(self) -> None:
        """Build the index now rather than at the first acknowledgement (the daemon, at start and on SIGHUP)."""
        self.kb  # noqa: B018 - the cached property does the work
