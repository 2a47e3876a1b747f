"""Templates: Jinja2 in its sandbox, customer text only ever as variables.

A mail template (`NAME.txt`) is a small mail: header lines (only `Subject:`
is used), a blank line, then the body. Customer text reaches a template as a
value in the context, never as template source, so `{{ 7*7 }}` in a subject
is just text. A page (`NAME.html`, the SLA report) is autoescaped: every
value is HTML-escaped unless the template says otherwise.

Templates are looked up in the admin's folder (`templates:` in the config),
then in the built-in `templates/` (config/builtin.py). Mail to a customer
names the languages to try, the ticket's then the default one: it renders
from `<language>/NAME.txt` (`nl/acknowledgement.txt`) in either folder when
there is one, else from `NAME.txt`, which is English. A language is a checked primary tag
(mail.language), never a path the sender chose. Their text is read
when the config is loaded, so a template edited on disk counts from the next
load: a SIGHUP whose templates do not validate keeps the running ones.

Two guards keep a broken template from costing mail: `config check` and
SIGHUP render every template of the admin's folder with sample data
(notify.samples), and at run time an admin's template that fails anyway
(data the samples did not have) is replaced by the built-in one, with an
error logged at the template's FILE:LINE.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
import re
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from jinja2 import FunctionLoader, StrictUndefined, Template, TemplateError, TemplateSyntaxError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mailtriage.errors import Problem

log = logging.getLogger(__name__)

# Templates mailtriage needs; `config check` reports a missing one.
REQUIRED = ("acknowledgement", "warning", "escalation", "agent_notice", "agent_reply", "command_error", "digest",
            "alert", "alert_recovered", "resolution")
SUFFIX = ".txt"
PAGE_SUFFIX = ".html"
_LANGUAGE = re.compile(r"[a-z]{2,3}")
BASE_LANGUAGE = "en"            # the language of the templates at the top of a folder


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class Templates:
    def __init__(self, folders: list[Path], builtin: Path | None = None):
        """Templates are looked up in each folder in turn (the admin's, then the
        defaults); `builtin`: the built-in folder, whose template replaces an
        admin's one that fails at run time."""
        self.folders = folders
        self.sources = _read(folders)
        self.env = ImmutableSandboxedEnvironment(
            loader=FunctionLoader(self._source),
            undefined=StrictUndefined,
            # Mail is plain text; a page escapes every value it shows.
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            keep_trailing_newline=True,
        )
        self.fallback = Templates([builtin]) if builtin is not None and builtin not in folders[:1] else None
        # Compiled once each: the sources are fixed for this object's life (a reload makes a new one).
        self._compiled: dict[str, Template] = {}

    def render(self, name: str, context: dict[str, Any], languages: tuple[str | None, ...] = ()) -> Rendered:
        """`NAME.txt` rendered as a mail; `languages`: try `<language>/NAME.txt` of each first."""
        return _mail(self._rendered(self.localized(name + SUFFIX, languages), context))

    def localized(self, filename: str, languages: tuple[str | None, ...]) -> str:
        """The first `<language>/FILE` there is, else FILE. FILE itself is
        English (BASE_LANGUAGE): an admin's own `acknowledgement.txt` keeps
        answering English customers, with no `en/` copy to go stale."""
        for language in languages:
            if language == BASE_LANGUAGE:
                return filename
            if language and _LANGUAGE.fullmatch(language) and f"{language}/{filename}" in self.sources:
                return f"{language}/{filename}"
        return filename

    def page(self, name: str, context: dict[str, Any]) -> str:
        """A whole HTML page (`NAME.html`), autoescaped."""
        return self._rendered(name + PAGE_SUFFIX, context)

    def render_file(self, name: str, context: dict[str, Any]) -> str:
        """One template by its file name (`acknowledgement.txt`), no fallback: for the checks."""
        template = self._compiled.get(name)
        if template is None:
            template = self._compiled[name] = self.env.get_template(name)
        return template.render(**context)

    def admin_files(self) -> list[str]:
        """The file names of the admin's own templates (none when only the built-in ones are used)."""
        if self.fallback is None:
            return []
        own = self.folders[0]
        return sorted(name for name, (_, filename) in self.sources.items() if Path(filename).is_relative_to(own))

    def failure_at(self, exc: BaseException, name: str) -> tuple[str, int]:
        """FILE and LINE of the template line that raised (Jinja keeps them in the traceback)."""
        files = {filename for _, filename in self.sources.values()}
        lines = [(frame.filename, frame.lineno or 1) for frame in traceback.extract_tb(exc.__traceback__)
                 if frame.filename in files]
        return lines[-1] if lines else (self.sources.get(name, ("", name))[1], 1)

    def check(self) -> list[Problem]:
        """Syntax errors at FILE:LINE, and required templates that are missing."""
        problems: list[Problem] = []
        for name in REQUIRED:
            if not any((folder / (name + SUFFIX)).is_file() for folder in self.folders):
                problems.append(Problem(str(self.folders[0]), 0, f"template {name}{SUFFIX} is missing"))
        for folder in self.folders[:1]:
            for path in sorted(folder.rglob("*" + SUFFIX)) + sorted(folder.rglob("*" + PAGE_SUFFIX)):
                problems.extend(self._check_file(path))
        return problems

    def _rendered(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self.render_file(name, context)
        except Exception as exc:  # noqa: BLE001 - the admin's template text: whatever it raises, the mail goes
            if self.fallback is None or name not in self.admin_files():
                raise
            file, line = self.failure_at(exc, name)
            log.error("template %s:%d: %s: %s; this mail uses the built-in %s instead", file, line,
                      exc.__class__.__name__, exc, name)
            builtin = name if name in self.fallback.sources else PurePosixPath(name).name
            return self.fallback.render_file(builtin, context)

    def _check_file(self, path: Path) -> list[Problem]:
        try:
            self.env.parse(path.read_text(encoding="utf-8"), path.name, str(path))
        except TemplateSyntaxError as exc:
            return [Problem(str(path), exc.lineno or 1, f"template: {exc.message}")]
        except (TemplateError, UnicodeDecodeError) as exc:
            return [Problem(str(path), 1, f"template: {exc}")]
        if path.suffix == PAGE_SUFFIX:
            return []
        head = path.read_text(encoding="utf-8").partition("\n\n")[0]
        if not any(line.lower().startswith("subject:") for line in head.splitlines()):
            return [Problem(str(path), 1, "template: the first lines must hold `Subject: …`, then a blank line")]
        return []

    def _source(self, name: str) -> tuple[str, str, Callable[[], bool]] | None:
        found = self.sources.get(name)
        return None if found is None else (found[0], found[1], lambda: True)


def load_templates(folder: Path | None, builtin: Path) -> Templates:
    """The admin's folder (None: none named) in front of the built-in one. A
    named folder that is not there is reported by the config's loader, at its line."""
    if folder is None or folder.resolve() == builtin.resolve():
        return Templates([builtin])
    return Templates([folder, builtin], builtin=builtin)


def _read(folders: list[Path]) -> dict[str, tuple[str, str]]:
    """Every template's text by its name in the folders (`acknowledgement.txt`,
    `nl/acknowledgement.txt`), the first folder's first, with its file name."""
    sources: dict[str, tuple[str, str]] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
            name = path.relative_to(folder).as_posix()
            if path.suffix in (SUFFIX, PAGE_SUFFIX) and path.is_file() and name not in sources:
                try:
                    sources[name] = (path.read_text(encoding="utf-8"), str(path))
                except (OSError, UnicodeDecodeError):
                    continue            # check() reports it at its file
    return sources


def _mail(text: str) -> Rendered:
    """A rendered mail template: the Subject: header line, then the body."""
    head, _, body = text.partition("\n\n")
    subject = ""
    for line in head.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "subject":
            subject = value.strip()
    return Rendered(subject=subject, body=body.lstrip("\n"))
