"""Test helpers: a throw-away mailtriage site, and messages made to order."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import textwrap
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, why: str) -> None:
    """Skip (laptop) or fail (CI) when something the test needs is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {why}")
    pytest.skip(why)


@dataclass
class Site:
    """A mailtriage installation in a temp dir: config, rules, templates, DB, outbox."""

    dir: Path
    config: Path

    def cli(self, *args: str, now: str | None = None, stdin: bytes | None = None) -> tuple[int, str, str]:
        """Run `mailtriage ARGS` in-process; returns (exit code, stdout, stderr)."""
        from mailtriage.cli import main

        argv = ["--config", str(self.config)] + (["--now", now] if now else []) + list(args)
        out, err = io.StringIO(), io.StringIO()
        stdin_backup = None
        if stdin is not None:
            stdin_backup = sys.stdin
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        finally:
            if stdin_backup is not None:
                sys.stdin = stdin_backup
        return code, out.getvalue(), err.getvalue()

    def ok(self, *args: str, now: str | None = None) -> str:
        code, out, err = self.cli(*args, now=now)
        assert code == 0, f"mailtriage {' '.join(args)} exited {code}: {err}"
        return out

    def ingest(self, *paths: Path, now: str | None = None) -> list[str]:
        return self.ok("ingest", *map(str, paths), now=now).splitlines()

    def ticket(self, ref: str) -> dict:
        return json.loads(self.ok("tickets", "show", ref, "--json"))

    def tickets(self) -> list[dict]:
        return json.loads(self.ok("tickets", "list", "--json"))

    def outbox_files(self) -> list[bytes]:
        """Flush the outbox to the site's Maildir, then read what is there."""
        self.ok("outbox", "flush")
        new = self.dir / "outbox" / "new"
        return [p.read_bytes() for p in sorted(new.iterdir())] if new.is_dir() else []

    def database_url(self) -> str:
        from mailtriage.config.load import load_settings

        return load_settings(self.config).database

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(textwrap.dedent(text))
        return path


SITE_CONFIG = """\
database: {database}
ticket_prefix: MT
mailboxes:
  - name: support
    address: support@example.test
    comment_address: support-comment@example.test
    queue: support
    from_name: Example Support
smtp_in: {{host: 127.0.0.1, port: {smtp_in_port}}}
smtp_out: {smtp_out}
agents:
  - {{email: alice@example.test, name: Alice, tier: L1}}
tiers:
  L1: {{notify: [l1-team@example.test]}}
  L2: {{notify: [l2-team@example.test]}}
  L3: {{notify: [l3-team@example.test]}}
  L4: {{notify: [vendor@partner.example]}}
calendars:
  office: {{timezone: Europe/Amsterdam, hours: {{mon-fri: "08:00-20:00"}}, holidays: NL}}
  always: {{timezone: UTC, hours: 24x7}}
sla:
  warn_at: 80%
  targets:
    S1: {{first_response: 15m, resolution: 1h, calendar: always}}
    S2: {{first_response: 30m, resolution: 2h, calendar: always}}
    S3: {{first_response: 1h, resolution: 3h, calendar: office}}
    S4: {{first_response: 4h, resolution: 3d, calendar: office}}
rules: rules.yaml
templates: templates/
agent_auth: {{authserv_ids: [mx.example.test], require: dkim_or_spf}}
agent_notices: {agent_notices}     # [] keeps agents' notices out of tests about other mail
"""


def make_site(root: Path, *, smtp_out: str = "{maildir: ./outbox}", smtp_in_port: int = 8025,
              database: str | None = None, agent_notices: str = "[]") -> Site:
    from mailtriage.config.builtin import builtin

    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(builtin("config") / "rules.yaml", root / "rules.yaml")
    shutil.copytree(builtin("templates"), root / "templates", dirs_exist_ok=True)
    config = root / "mailtriage.yaml"
    config.write_text(SITE_CONFIG.format(database=database or "sqlite:///mailtriage.db",
                                         smtp_out=smtp_out, smtp_in_port=smtp_in_port,
                                         agent_notices=agent_notices))
    return Site(root, config)




def eml(subject: str = "Printer on fire", body: str = "It is smoking.", *,
        sender: str = "Carla Customer <carla@customer.example>", to: str = "support@example.test",
        cc: str | None = None, message_id: str | None = None, in_reply_to: str | None = None,
        references: str | None = None, date: datetime | None = None, headers: dict[str, str] | None = None) -> bytes:
    """A plain RFC 5322 message as a customer's mail client would send it."""
    lines = [f"From: {sender}", f"To: {to}"]
    if cc:
        lines.append(f"Cc: {cc}")
    lines.append(f"Subject: {subject}")
    lines.append(f"Date: {format_datetime(date or datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))}")
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
              "Content-Transfer-Encoding: 8bit", "", body, ""]
    return "\r\n".join(lines).encode("utf-8")


def break_raw_inserts(database_url: str) -> None:
    """Make every insert into raw_messages fail, as a full disk or a dead
    database would, with a trigger on the real database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER broken BEFORE INSERT ON raw_messages "
                              "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            conn.execute(text("CREATE FUNCTION mt_broken() RETURNS trigger AS $$ BEGIN "
                              "RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER broken BEFORE INSERT ON raw_messages "
                              "FOR EACH ROW EXECUTE FUNCTION mt_broken()"))
    engine.dispose()


def break_ticket_step(monkeypatch: pytest.MonkeyPatch, hits=lambda mail: True) -> None:  # type: ignore[no-untyped-def]
    """A bug in the ticket step for the mail `hits` picks (`monkeypatch.undo()`
    is the fix). Until issue 17 a broken template did this; templates are now
    rendered with sample data at load and fall back to the built-in ones, so
    no template can break a step any more."""
    from mailtriage.pipeline import spine

    real_step = spine.change_ticket

    def step_with_a_bug(app, session, incoming, ticket, threading):  # type: ignore[no-untyped-def]
        if hits(incoming.mail):
            raise KeyError(f"a bug that hits {incoming.mail.message_id}")
        return real_step(app, session, incoming, ticket, threading)

    monkeypatch.setattr(spine, "change_ticket", step_with_a_bug)


def site_app(site: Site, now: datetime):  # type: ignore[no-untyped-def]
    """The site's App in-process, on a clock the test moves (`app.clock.advance`)."""
    from mailtriage.app import build_app, load_config
    from mailtriage.clock import ManualClock

    app = build_app(load_config(site.config), ManualClock(now))
    # The language model loads once per process (mail.language): not inside a test's bounds for one message.
    app.config.detector.rank_top("warm up")
    return app


def dsn(original_id: str, recipient: str, *, action: str = "failed", status: str = "5.1.1",
        mta: str = "mx.customer.example", message_id: str = "<dsn-1@mx.customer.example>") -> bytes:
    """An RFC 3464 delivery status notification, as Postfix writes one, about
    our message `original_id` to `recipient`."""
    text = f"""\
Return-Path: <>
From: MAILER-DAEMON@{mta} (Mail Delivery System)
To: support@example.test
Subject: Undelivered Mail Returned to Sender
Date: Mon, 02 Mar 2026 09:05:00 +0000
Message-ID: {message_id}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

<{recipient}>: host {mta} said: 550 {status} User unknown

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; {mta}

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}

--B
Content-Type: text/rfc822-headers

From: Example Support <support@example.test>
To: {recipient}
Subject: [MT-1] Printer on fire
Message-ID: {original_id}

--B--
"""
    return text.replace("\n", "\r\n").encode()


def qmail_bounce(original_id: str, recipient: str) -> bytes:
    """qmail's plain-text failure notice: no DSN, the original quoted inline."""
    text = f"""\
Return-Path: <>
From: MAILER-DAEMON@mail.customer.example
To: support@example.test
Subject: failure notice
Date: Mon, 02 Mar 2026 09:05:00 +0000
Message-ID: <qmail-1@mail.customer.example>

Hi. This is the qmail-send program at mail.customer.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{recipient}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <support@example.test>
From: Example Support <support@example.test>
To: {recipient}
Subject: [MT-1] Printer on fire
Message-ID: {original_id}

thank you for writing to us.
"""
    return text.encode()


@contextlib.contextmanager
def bounded(seconds: float, megabytes: float | None):  # type: ignore[no-untyped-def]
    """Assert that the block finishes within `seconds` and that Python's
    allocations inside it peak below `megabytes` (tracemalloc; None: time
    only, where tracemalloc's own cost, ten times the parse of a big MIME
    tree, would dominate). Generous bounds that catch a runaway, not a benchmark."""
    import time
    import tracemalloc

    if megabytes is not None:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if megabytes is not None else 0.0
    finally:
        if megabytes is not None:
            tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f} s, bound {seconds} s"
    assert megabytes is None or peak < megabytes, f"peaked at {peak:.0f} MB, bound {megabytes} MB"


def bare(header) -> str:  # type: ignore[no-untyped-def]
    """The addresses of a parsed To/Cc header, comma-separated, without the
    display names our mail keeps there (issue 17, item 20)."""
    return ", ".join(address.addr_spec for address in header.addresses) if header is not None else ""
