"""Reading the knowledge base's folder: the files → articles and problems
(the I/O at the rim of mailtriage.kb; ranking is kb.index's).

    knowledge_base: kb/  ─► every *.md below it ─► size limit ─► UTF-8 ─► kb.article ─► Loaded
                                                                    duplicate titles ─┘

A broken article is left out of the index and reported; it never stops the
daemon or the rest of the folder. `mailtriage kb check` prints the same
problems as FILE:LINE and exits 2 when there are any.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from mailtriage.errors import Problem
from mailtriage.kb.article import Article, parse_article
from mailtriage.kb.index import KnowledgeBase

log = logging.getLogger(__name__)

# An article is a help page, not a manual: past this it is refused (a 10 MB
# file is a mistake, an attachment, or somebody testing us).
MAX_ARTICLE_SIZE = 1024**2
SUFFIXES = (".md", ".markdown")


@dataclass(frozen=True)
class Loaded:
    folder: Path
    articles: tuple[Article, ...]
    problems: tuple[Problem, ...]


def read_folder(folder: Path, default_language: str = "en") -> Loaded:
    """Every article below `folder`, and each problem found on the way."""
    if not folder.is_dir():
        return Loaded(folder, (), (Problem(str(folder), 0, "knowledge base folder not found"),))
    articles: list[Article] = []
    problems: list[Problem] = []
    for path in _article_files(folder):
        parsed = _read(path, folder, default_language)
        if isinstance(parsed, Problem):
            problems.append(parsed)
        else:
            articles.append(parsed)
    problems += duplicate_titles(articles, folder)
    return Loaded(folder, tuple(articles), tuple(problems))


def load_knowledge_base(folder: Path, default_language: str = "en") -> KnowledgeBase:
    """The index the daemon and the CLI search; problems are logged, never fatal."""
    start = time.perf_counter()
    loaded = read_folder(folder, default_language)
    for problem in loaded.problems:
        log.warning("knowledge base: %s", problem)
    kb = KnowledgeBase(loaded.articles)
    log.info("knowledge base %s: %d articles indexed in %.1f s, %d problems (mailtriage kb check)", folder, len(kb),
             time.perf_counter() - start, len(loaded.problems))
    return kb


def duplicate_titles(articles: list[Article], folder: Path) -> list[Problem]:
    """Two articles of one language with one title: a customer could not tell them apart."""
    first: dict[tuple[str, str], Article] = {}
    problems = []
    for article in articles:
        key = (article.language, article.title.casefold())
        if key in first:
            other = first[key]
            problems.append(Problem(str(folder / article.path), article.title_line,
                                    f"duplicate title {article.title!r}: also {folder / other.path}:{other.title_line}"))
        else:
            first[key] = article
    return problems


def _article_files(folder: Path) -> list[Path]:
    """Markdown files below `folder`, in a stable order; hidden files and folders are not articles."""
    found = [p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()]
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _read(path: Path, folder: Path, default_language: str) -> Article | Problem:
    shown = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_ARTICLE_SIZE:
            return Problem(shown, 1, f"article is {_megabytes(size)}, over the {_megabytes(MAX_ARTICLE_SIZE)} "
                                     "limit: not indexed")
        with path.open("rb") as handle:
            data = handle.read(MAX_ARTICLE_SIZE + 1)       # the file may have grown since stat()
    except OSError as exc:
        return Problem(shown, 1, f"cannot read: {exc.strerror or exc}")
    if len(data) > MAX_ARTICLE_SIZE:
        return Problem(shown, 1, f"article is over the {_megabytes(MAX_ARTICLE_SIZE)} limit: not indexed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return Problem(shown, line, f"not UTF-8 ({exc.reason}): not indexed")
    parsed = parse_article(text, path.relative_to(folder).as_posix(), default_language)
    return replace(parsed, file=shown) if isinstance(parsed, Problem) else parsed


def _megabytes(size: int) -> str:
    return f"{size / 1024**2:.1f} MB"
