"""`mailtriage explain FILE.eml [--json]`: what would happen to a message, storing nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from mailtriage.cli import common
from mailtriage.pipeline.explain import explain, explain_text


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("explain", help="what would happen to a message (threading, rules, mail), storing nothing")
    parser.add_argument("file", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    app = common.app(args)
    try:
        report = explain(app, args.file.read_bytes(), app.clock.now())
    finally:
        app.store.close()
    if args.json:
        common.print_json(report)
    else:
        print(explain_text(report))
    return 0
