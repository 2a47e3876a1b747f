"""Admin commands: init, config check, rules test, db upgrade, run."""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from mailtriage.app import load_config
from mailtriage.classify import classify
from mailtriage.cli import common
from mailtriage.mail.parse import parse
from mailtriage.config.builtin import builtin
from mailtriage.config.load import default_config_path, load_settings
from mailtriage.store.db import connect, upgrade


def register(sub: argparse._SubParsersAction) -> None:
    init = sub.add_parser("init", help="write a commented example config, rules and templates")
    init.add_argument("dir", nargs="?", type=Path, default=Path("."))
    init.set_defaults(handler=cmd_init)

    config = sub.add_parser("config", help="validate the configuration").add_subparsers(dest="sub", required=True)
    config.add_parser("check", help="validate config, rules, calendars and templates").set_defaults(handler=cmd_check)

    rules = sub.add_parser("rules", help="try the rules").add_subparsers(dest="sub", required=True)
    test = rules.add_parser("test", help="what the rules decide for a message, without storing it")
    test.add_argument("file", type=Path)
    test.add_argument("--json", action="store_true")
    test.set_defaults(handler=cmd_rules_test)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="sub", required=True)
    db.add_parser("upgrade", help="bring the schema to the current version").set_defaults(handler=cmd_db_upgrade)

    run = sub.add_parser("run", help="the daemon: IMAP, SMTP/LMTP listener, outbox, SLA timers")
    run.set_defaults(handler=cmd_run)


def cmd_init(args: argparse.Namespace) -> int:
    target: Path = args.dir
    target.mkdir(parents=True, exist_ok=True)
    config, templates = builtin("config"), builtin("templates")
    copies = [(src, target / src.name) for src in sorted(config.glob("*.yaml"))]
    copies += [(src, target / "templates" / src.relative_to(templates))
               for src in sorted(templates.rglob("*")) if src.is_file() and src.suffix in (".txt", ".html")]
    for src, dst in copies:
        if dst.exists():
            print(f"kept     {dst} (exists; init never overwrites)")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        print(f"wrote    {dst}")
    print(f"next: edit {target / 'mailtriage.yaml'}, then `mailtriage --config {target / 'mailtriage.yaml'} config check`")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    path = args.config if args.config is not None else default_config_path()
    config = load_config(path)        # raises ConfigError with every problem
    settings = config.settings
    print(f"ok: {path or 'embedded defaults'}: {len(settings.mailboxes)} mailbox(es), "
          f"{len(config.rules.rules)} rule(s), {len(config.calendars)} calendar(s), "
          f"{len(settings.agents)} agent(s)")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    config = common.config(args)
    mail = parse(args.file.read_bytes())
    verdict = classify(mail, config.rules)
    if args.json:
        common.print_json({"message_id": mail.message_id, "subject": mail.subject, "from": mail.from_addr,
                           **verdict.as_dict()})
        return 0
    print(f"{args.file}: {mail.subject!r} from {mail.from_addr}")
    print(f"  severity {verdict.severity.value} ({verdict.decided_by.get('severity')})  "
          f"tier {verdict.tier.value} ({verdict.decided_by.get('tier')})  "
          f"queue {verdict.queue} ({verdict.decided_by.get('queue')})  tags {', '.join(verdict.tags) or '-'}")
    if not verdict.hits:
        print("  no rule matched: the default applies")
    for hit in verdict.hits:
        print(f"  rule {hit.rule}: {hit.field} matched {hit.pattern!r} on {hit.matched!r}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    path = args.config if args.config is not None else default_config_path()
    store = connect(load_settings(path).database)
    try:
        before, after = upgrade(store)
    finally:
        store.close()
    if before == after:
        print(f"database already at {after} (newest)")
    else:
        print(f"database upgraded from {before or 'empty'} to {after}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from mailtriage.daemon import run_daemon

    # The daemon logs one line per message at INFO; -v adds the IMAP/SMTP chatter of the libraries.
    logging.getLogger().setLevel(logging.DEBUG if args.verbose >= 2 else logging.INFO)
    for noisy in ("imapclient", "mail.log", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose >= 1 else logging.WARNING)
    return run_daemon(common.config(args), common.clock(args))
