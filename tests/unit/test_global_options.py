"""--config, --now and -v before or after every command and subcommand
(../shared/CONTRACT.md, "Commands"): the parser, over every command it has."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

from mailtriage.cli import build_parser

NOW = "2026-03-02T09:00:00+01:00"
GLOBAL = ["--config", "site/mailtriage.yaml", "--now", NOW, "-v"]


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[list[str], list[str]]]:
    """Every runnable command: its words, and a value for each required positional and option."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, path + (name,))
            return
    required = [word for a in parser._actions if a.option_strings and a.required for word in (a.option_strings[0], "x")]
    yield list(path), ["x" for a in parser._actions if not a.option_strings and a.nargs is None] + required


def test_the_walk_finds_every_command():
    names = {" ".join(words) for words, _ in commands(build_parser())}
    assert {"ingest", "import", "tickets list", "tickets show", "sla tick", "sla explain", "report sla",
            "outbox flush", "quarantine retry", "run", "config check", "db upgrade"} <= names


def test_global_options_mean_the_same_before_and_after_every_command():
    for words, positionals in commands(build_parser()):
        before = build_parser().parse_args([*GLOBAL, *words, *positionals])
        after = build_parser().parse_args([*words, *positionals, *GLOBAL])
        assert vars(before) == vars(after), words
        assert (after.now, after.config, after.verbose) == (NOW, Path("site/mailtriage.yaml"), 1), words


def test_an_option_not_repeated_after_the_command_keeps_its_value_from_before():
    args = build_parser().parse_args(["--now", NOW, "--config", "a.yaml", "-vv", "sla", "tick"])
    assert (args.now, args.config, args.verbose) == (NOW, Path("a.yaml"), 2)
    args = build_parser().parse_args(["ingest"])
    assert (args.now, args.config, args.verbose) == (None, None, 0)


def test_the_one_after_the_command_wins():
    args = build_parser().parse_args(["--now", "2026-01-01T00:00:00Z", "ingest", "--now", NOW])
    assert args.now == NOW
