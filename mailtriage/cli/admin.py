"""Admin commands: init, config check, rules test and replay, db upgrade, run."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from mailtriage.app import load_config
from mailtriage.classify import RuleSet, classify, load_rules
from mailtriage.classify.priority import Matrix
from mailtriage.classify.expect import load_fixtures, mismatches
from mailtriage.classify.replay import Replay, replay
from mailtriage.cli import common
from mailtriage.mail.parse import parse
from mailtriage.config.builtin import builtin
from mailtriage.config.load import default_config_path, load_settings, oauth2_problems
from mailtriage.errors import ConfigError, MailtriageError, UsageError, exit_code
from mailtriage.model import ticket_ref
from mailtriage.store.db import connect, upgrade
from mailtriage.store.readonly import first_customer_messages, open_readonly
from mailtriage.web import users

log = logging.getLogger(__name__)

FIXTURES = "rules-fixtures"      # beside rules.yaml: X.eml + X.expect.yaml (classify/expect.py)


def register(sub: argparse._SubParsersAction) -> None:
    init = sub.add_parser("init", help="write a commented example config, rules and templates")
    init.add_argument("dir", nargs="?", type=Path, default=Path("."))
    init.set_defaults(handler=cmd_init)

    config = sub.add_parser("config", help="validate the configuration").add_subparsers(dest="sub", required=True)
    config.add_parser("check", help="validate config, rules, calendars and templates").set_defaults(handler=cmd_check)

    rules = sub.add_parser("rules", help="try the rules").add_subparsers(dest="sub", required=True)
    test = rules.add_parser("test", help="what the rules decide for a message, without storing it")
    test.add_argument("file", type=Path, help="a message; with --expect, a folder of X.eml + X.expect.yaml")
    test.add_argument("--expect", action="store_true", help="check each X.eml against X.expect.yaml; exit 1 "
                      "on any mismatch")
    test.add_argument("--rules", type=Path, help="this rules file instead of the config's")
    test.add_argument("--json", action="store_true")
    test.set_defaults(handler=cmd_rules_test)
    again = rules.add_parser("replay", help="what another rules file would decide for the stored tickets' "
                             "first messages (reads the database, never writes)")
    again.add_argument("--rules", type=Path, required=True, help="the candidate rules file")
    again.add_argument("--since", help="tickets created on or after this date (YYYY-MM-DD) or instant")
    again.add_argument("--json", action="store_true")
    again.set_defaults(handler=cmd_rules_replay)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="sub", required=True)
    db.add_parser("upgrade", help="bring the schema to the current version").set_defaults(handler=cmd_db_upgrade)

    run = sub.add_parser("run", help="the daemon: IMAP, SMTP/LMTP listener, outbox, SLA timers")
    run.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="json: one JSON object per log line (time, level, logger, message, exception)")
    run.set_defaults(handler=cmd_run)


def cmd_init(args: argparse.Namespace) -> int:
    target: Path = args.dir
    target.mkdir(parents=True, exist_ok=True)
    config, templates = builtin("config"), builtin("templates")
    copies = [(src, target / src.name) for src in sorted(config.glob("*.yaml"))]
    # The example rules' fixtures: `rules test rules-fixtures --expect` keeps edited rules honest.
    copies += [(src, target / FIXTURES / src.name) for src in sorted((config / FIXTURES).glob("*"))]
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
    problems = oauth2_problems(settings)     # token files and client secrets: `FILE: what is wrong`
    problems += users.problems(settings)     # the board's users file: FILE:LINE, or its mode
    if problems:
        raise ConfigError(problems)
    for warning in config.warnings:          # works, but loses something: said, and still exit 0
        print(warning, file=sys.stderr)
    warned = f", {len(config.warnings)} warning(s) above" if config.warnings else ""
    print(f"ok: {path or 'embedded defaults'}: {len(settings.mailboxes)} mailbox(es), "
          f"{len(config.rules.rules)} rule(s), {len(config.calendars)} calendar(s), "
          f"{len(settings.agents)} agent(s){warned}")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    if args.expect and args.json:
        raise UsageError("--json shows one message's verdict; --expect prints one line per mismatch")
    rules = _rules_of(args)
    matrix = common.config(args).settings.priority_matrix      # the config's, also with --rules
    if args.expect:
        return _test_fixtures(args.file, rules, matrix)
    mail = parse(args.file.read_bytes())
    verdict = classify(mail, rules, matrix)
    if args.json:
        common.print_json({"message_id": mail.message_id, "subject": mail.subject, "from": mail.from_addr,
                           **verdict.as_dict()})
        return 0
    print(f"{args.file}: {mail.subject!r} from {mail.from_addr}")
    print(f"  severity {verdict.severity.value} ({verdict.decided_by.get('severity')})  "
          f"tier {verdict.tier.value} ({verdict.decided_by.get('tier')})  "
          f"queue {verdict.queue} ({verdict.decided_by.get('queue')})  tags {', '.join(verdict.tags) or '-'}")
    print(f"  {verdict.priority}" + ("" if matrix is not None else "  (no priority_matrix in the config)"))
    if not verdict.hits:
        print("  no rule matched: the default applies")
    for hit in verdict.hits:
        print(f"  rule {hit.rule}: {hit.field} matched {hit.pattern!r} on {hit.matched!r}")
    return 0


def _rules_of(args: argparse.Namespace) -> RuleSet:
    """`--rules FILE` when given, else the rules in force (the config's)."""
    return load_rules(args.rules) if args.rules is not None else common.config(args).rules


def _test_fixtures(folder: Path, rules: RuleSet, matrix: Matrix | None) -> int:
    """`rules test DIR --expect`: one line per mismatch, exit 1 if any."""
    fixtures = load_fixtures(folder)        # a broken fixture set: ConfigError, every problem at its line
    failed = 0
    for fixture in fixtures:
        wrong = mismatches(fixture.expect, classify(parse(fixture.eml.read_bytes()), rules, matrix))
        failed += bool(wrong)
        for line in wrong:
            print(f"{fixture.eml.name}: {line}")
    if failed:
        print(f"{failed} of {len(fixtures)} fixture(s) in {folder} not as expected by {rules.source}")
        return 1
    print(f"ok: {len(fixtures)} fixture(s) in {folder} as expected by {rules.source}")
    return 0


def cmd_rules_replay(args: argparse.Namespace) -> int:
    since = common.since(args.since)
    config = common.config(args)
    candidate = load_rules(args.rules)
    prefix = config.settings.ticket_prefix
    store = open_readonly(config.settings.database)      # SQLite mode=ro / READ ONLY transactions
    try:
        with store.session() as session:
            stored = ((ticket_ref(prefix, number), raw) for number, raw in first_customer_messages(session, since))
            result = replay(stored, config.rules, candidate, config.settings.priority_matrix)
    finally:
        store.close()
    if args.json:
        common.print_json(result.as_dict())
    else:
        print(_replay_text(result, candidate.source))
    return 0


def _replay_text(result: Replay, source: str) -> str:
    lines = [f"{c.ref} {c.field} {_shown(c.old)} -> {_shown(c.new)} ({c.rule})" for c in result.changed]
    tickets = len({c.ref for c in result.changed})
    by_rule = ", ".join(f"{rule} {count}" for rule, count in result.by_rule().items())
    lines.append(f"{result.messages} first message(s) replayed through {source}: {tickets} ticket(s) would "
                 f"change" + (f" ({len(result.changed)} field(s)); tickets per rule: {by_rule}" if tickets else ""))
    return "\n".join(lines)


def _shown(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return "-" if value is None else str(value)


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
    from mailtriage.daemon.logs import use_format

    # The daemon logs one line per message at INFO; -v adds the IMAP/SMTP chatter of the libraries.
    logging.getLogger().setLevel(logging.DEBUG if args.verbose >= 2 else logging.INFO)
    for noisy in ("imapclient", "mail.log", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose >= 1 else logging.WARNING)
    use_format(args.log_format)
    if args.log_format == "text":
        return run_daemon(common.config(args), common.clock(args))
    try:                           # json: even a refused start is JSON lines, not plain text
        return run_daemon(common.config(args), common.clock(args))
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return exit_code(exc)
    except MailtriageError as exc:
        log.error("mailtriage: %s", exc)
        return exit_code(exc)
    except Exception:  # noqa: BLE001 - logged as JSON, with the traceback, instead of Python's plain text
        log.critical("mailtriage daemon crashed", exc_info=True)
        return 1
