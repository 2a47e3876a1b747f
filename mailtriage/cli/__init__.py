"""The `mailtriage` command: parse arguments, build the App, run a command,
map errors to exit codes (0 ok, 1 unexpected, 2 usage/config, 75 retry;
`ingest` from stdin is an MTA's pipe: cli/pipe.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

from mailtriage.cli import admin, explain, kb, mail, oauth, pipe, sla, status, tickets, users
from mailtriage.errors import ConfigError, MailtriageError, UsageError, exit_code

COMMANDS = (admin, mail, tickets, sla, explain, kb, oauth, status, users)
DESCRIPTION = ("mailtriage: an email-driven support-ticket daemon that threads the mail customers send to "
               "a support address into tickets, classifies and acknowledges it, and keeps the SLA clocks.")


def global_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """--config, --now and -v: taken before the command and after it alike."""
    parser.add_argument("--config", type=Path, default=default,
                        help="config file (default: $MAILTRIAGE_CONFIG, ./mailtriage.yaml, else the embedded defaults)")
    parser.add_argument("--now", metavar="ISO-8601", default=default,
                        help="pretend the time is this instant (tests, cron replays)")
    parser.add_argument("-v", "--verbose", action="count", default=0 if default is None else default,
                        help="more log lines (-vv: everything); in the MTA pipe, the traceback too")


class Parser(argparse.ArgumentParser):
    """A usage error is a UsageError, so that main() maps it like any other failure."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}", usage=self.format_usage())


class CommandParser(Parser):
    """Every command and subcommand parser: the global options once more, after
    its name. SUPPRESS: an option not repeated there keeps the value given before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        global_options(self, default=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mailtriage", description=DESCRIPTION)
    global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        if pipe.named(argv):                       # a bad master.cf line must not bounce the mail
            return pipe.failed(exc, verbose=0)
        print(f"{exc.usage}{exc}", file=sys.stderr)
        return exit_code(exc)
    if pipe.is_pipe(args):
        return pipe.run(args)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return exit_code(exc)
    except MailtriageError as exc:
        print(f"mailtriage: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
