"""Knowledge-base commands: `kb search TEXT` shows the ranking an
acknowledgement would use; `kb check` reports what keeps articles out of it."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from mailtriage.cli import common
from mailtriage.errors import ConfigError, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    kb = sub.add_parser("kb", help="the knowledge base: search, check").add_subparsers(dest="sub", required=True)
    search = kb.add_parser("search", help="rank the articles for a text, with scores")
    search.add_argument("text", help="what a customer might write (one argument: quote it)")
    search.add_argument("--language", help="the customer's language: its articles come first")
    search.add_argument("--limit", type=int, default=10, help="articles shown (default 10)")
    search.add_argument("--json", action="store_true")
    search.set_defaults(handler=cmd_search)
    check = kb.add_parser("check", help="broken front matter, duplicate titles, oversized files: FILE:LINE")
    check.add_argument("folder", nargs="?", type=Path, help="default: the config's knowledge_base")
    check.set_defaults(handler=cmd_check)


def cmd_search(args: argparse.Namespace) -> int:
    config = common.config(args)
    if config.kb_folder is None:
        raise UsageError("the config names no knowledge_base folder")
    kb, text = config.kb, args.text
    ranking = kb.rank(text, limit=args.limit)
    suggested = kb.search(text, language=args.language)
    if args.json:
        common.print_json({"text": text, "language": args.language, "articles": len(kb),
                           "min_score": kb.min_score, "suggested": [s.as_dict() for s in suggested],
                           "ranking": [{**s.as_dict(), "suggested": s in suggested} for s in ranking]})
        return 0
    print(f"# {len(kb)} articles; suggested: named by the mail (its title or a keyword) "
          f"and a score of at least {kb.min_score:g}")
    for found in ranking:
        mark = "suggested" if found in suggested else "-"
        why = f"named by {found.named_by}" if found.named_by else "not named"
        print(f"{found.score:7.2f}  {mark:<9}  {found.language:<3} {found.title}  ({found.path}; {why})")
    print("acknowledgement: " + ("; ".join(f"{s.title} <{s.url or 'no url'}>" for s in suggested) or "no articles"))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from mailtriage.kb.load import read_folder

    folder = args.folder
    if folder is None:
        folder = common.config(args).kb_folder
        if folder is None:
            raise UsageError("the config names no knowledge_base folder (or give one: mailtriage kb check FOLDER)")
    loaded = read_folder(folder)
    languages = Counter(a.language for a in loaded.articles)
    print(f"{folder}: {len(loaded.articles)} article(s) ("
          + ", ".join(f"{lang} {count}" for lang, count in sorted(languages.items())) + f"), "
          f"{len(loaded.problems)} problem(s)")
    if loaded.problems:
        raise ConfigError(list(loaded.problems))
    return 0
