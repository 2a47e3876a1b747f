"""Templates: Jinja2 in its sandbox, customer text only ever as variables.

A mail template (`NAME.txt`) is a small mail: header lines (only `Subject:`
is used), a blank line, then the body. Customer text reaches a template as a
value in the context, never as template source, so `{{ 7*7 }}` in a subject
is just text. A page (`NAME.html`, the SLA report) is autoescaped: every
value is HTML-escaped unless the template says otherwise.

Templates are looked up in the admin's folder (`templates:` in the config),
then in the built-in `templates/` (config/builtin.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mailtriage.errors import Problem

# Templates mailtriage needs; `config check` reports a missing one.
REQUIRED = ("acknowledgement", "warning", "escalation", "agent_notice", "agent_reply", "command_error")
SUFFIX = ".txt"
PAGE_SUFFIX = ".html"


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class Templates:
    def __init__(self, folders: list[Path]):
        """Templates are looked up in each folder in turn (the admin's, then the defaults)."""
        self.folders = folders
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader([str(f) for f in folders]),
            undefined=StrictUndefined,
            # Mail is plain text; a page escapes every value it shows.
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            keep_trailing_newline=True,
        )

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        text = self.env.get_template(name + SUFFIX).render(**context)
        head, _, body = text.partition("\n\n")
        subject = ""
        for line in head.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "subject":
                subject = value.strip()
        return Rendered(subject=subject, body=body.lstrip("\n"))

    def page(self, name: str, context: dict[str, Any]) -> str:
        """A whole HTML page (`NAME.html`), autoescaped."""
        return self.env.get_template(name + PAGE_SUFFIX).render(**context)

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


def load_templates(folder: Path | None, builtin: Path) -> Templates:
    """The admin's folder (None: none named) in front of the built-in one. A
    named folder that is not there is reported by the config's loader, at its line."""
    if folder is None or folder.resolve() == builtin.resolve():
        return Templates([builtin])
    return Templates([folder, builtin])
