"""One knowledge-base article: Markdown text → an Article, or the Problem
that keeps it out of the index (pure: text in, values out; kb.load reads the files).

    ---                         optional YAML front matter (every key optional)
    title: VPN werkt niet
    keywords: [vpn, verbinding]
    language: nl
    url: https://help.example.test/nl/vpn
    ---
    # VPN werkt niet            the title when the front matter has none
    Markdown body …

Without `language:` an article takes its folder's name when that is a
language tag (`kb/nl/vpn.md`), else the default language. Other front
matter keys (Jekyll's `date`, Hugo's `draft`) are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from mailtriage.errors import Problem
from mailtriage.kb.text import STEMMERS, primary_language

FENCE = "---"
CLOSERS = ("---", "...")
MAX_TITLE = 200
URL = re.compile(r"https?://[^\s<>\"]+")
HEADING = re.compile(r"#{1,6}\s+(.+?)\s*#*\s*")


@dataclass(frozen=True)
class Article:
    path: str                      # relative to the knowledge base's folder, with `/`
    title: str
    title_line: int                # where the title was written (1 when it is the file's name)
    language: str                  # a primary language tag: en, nl, ru …
    url: str | None
    keywords: tuple[str, ...]
    body: str


def parse_article(text: str, path: str, default_language: str) -> Article | Problem:
    """The article in `text` (the file at `path`), or why it is broken."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    front, body, body_line = _split(text, path)
    if isinstance(front, Problem):
        return front
    meta, lines = front
    bad = _check_meta(meta, lines, path)
    if bad is not None:
        return bad
    heading = _heading(body, body_line)
    title, title_line = _title(meta, lines, heading, path)
    language = _language(meta.get("language"), path, default_language)
    if language is None:
        return Problem(path, lines.get("language", 1), f"language {meta['language']!r} is no language tag")
    keywords = meta.get("keywords") or ()
    keywords = tuple(k.strip() for k in keywords.split(",")) if isinstance(keywords, str) else tuple(map(str, keywords))
    url = None if meta.get("url") is None else str(meta["url"])
    return Article(path, title, title_line, language, url, tuple(k for k in keywords if k), body)


def _split(text: str, path: str) -> tuple[tuple[dict[str, Any], dict[str, int]] | Problem, str, int]:
    """(front matter and its keys' lines, the body, the body's first line)."""
    lines = text.split("\n")
    if lines[0].rstrip() != FENCE:
        return ({}, {}), text, 1
    end = next((i for i, line in enumerate(lines[1:], 1) if line.rstrip() in CLOSERS), None)
    if end is None:
        return Problem(path, 1, "front matter opened with --- is never closed (--- or ... on a line of its own)"), "", 1
    try:
        data, key_lines = _yaml("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 2 if mark is not None else 2           # + the opening ---
        return Problem(path, line, f"front matter: YAML: {getattr(exc, 'problem', None) or exc}"), "", 1
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return Problem(path, 2, "front matter must be keys and values (title: …)"), "", 1
    return ({str(k): v for k, v in data.items()}, key_lines), "\n".join(lines[end + 1:]), end + 2


def _yaml(block: str) -> tuple[Any, dict[str, int]]:
    """The front matter and the file line of each top-level key, in one parse
    (libyaml's safe loader when there is one: 10,000 articles load in seconds, not tens)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(block)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines = {}
    if isinstance(node, yaml.MappingNode):
        lines = {str(key.value): key.start_mark.line + 2 for key, _ in node.value}
    return data, lines


def _check_meta(meta: dict[str, Any], lines: dict[str, int], path: str) -> Problem | None:
    """Each known key has the type it needs; a value reaches mail, so it is one line."""
    for key in ("title", "language", "url"):
        value = meta.get(key)
        if value is not None and not isinstance(value, (str, int, float)):
            return Problem(path, lines[key], f"{key} must be text")
    keywords = meta.get("keywords")
    if keywords is not None and not isinstance(keywords, str) and not (
            isinstance(keywords, list) and all(isinstance(k, (str, int, float)) for k in keywords)):
        return Problem(path, lines["keywords"], "keywords must be a list of words or one line of words")
    url = meta.get("url")
    if url is not None and not (URL.fullmatch(str(url)) and str(url).isprintable()):   # no control or bidi characters
        return Problem(path, lines["url"], f"url {str(url)[:80]!r} is not one http(s) address")
    title = meta.get("title")
    if title is not None and not " ".join(str(title).split()):
        return Problem(path, lines["title"], "title is empty")
    return None


def _heading(body: str, first_line: int) -> tuple[str, int] | None:
    for number, line in enumerate(body.split("\n"), first_line):
        match = HEADING.fullmatch(line)
        if match:
            return match.group(1), number
    return None


def _title(meta: dict[str, Any], lines: dict[str, int], heading: tuple[str, int] | None,
           path: str) -> tuple[str, int]:
    """front matter `title:`, else the first heading, else the file's name; one line, not too long."""
    if meta.get("title") is not None:
        raw, line = str(meta["title"]), lines["title"]
    elif heading is not None:
        raw, line = heading
    else:
        raw, line = PurePosixPath(path).stem.replace("-", " ").replace("_", " "), 1
    printable = "".join(ch if ch.isprintable() else " " for ch in raw)   # no control or bidi characters
    return " ".join(printable.split())[:MAX_TITLE], line


def _language(value: Any, path: str, default: str) -> str | None:
    if value is not None:
        return primary_language(str(value))
    # Only a folder named like a language we stem (nl, nl-BE): `faq/` or `hr/` are topics.
    folder = primary_language(PurePosixPath(path).parent.name) or ""
    return folder if folder in STEMMERS else default
