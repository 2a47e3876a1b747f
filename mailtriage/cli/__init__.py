"""The `mailtriage` command: parse arguments, build the App, run a command,
map errors to exit codes (0 ok, 1 unexpected, 2 usage/config, 75 retry)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mailtriage.cli import admin, explain, mail, sla, tickets
from mailtriage.errors import ConfigError, MailtriageError

COMMANDS = (admin, mail, tickets, sla, explain)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailtriage", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="config file (default: $MAILTRIAGE_CONFIG, "
                        "./mailtriage.yaml, else the embedded defaults)")
    parser.add_argument("--now", help="pretend the time is this ISO-8601 instant")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return exc.exit_code
    except MailtriageError as exc:
        print(f"mailtriage: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
