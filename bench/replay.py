"""Replay rate: `python bench/replay.py [--tickets N] [--database URL]`.

Imports a synthetic mailbox (bench/synth.py's messages: three languages,
five charsets, HTML-only mail, attachments) of N tickets (default 10,000; a
quarter of them with a reply, so each ticket's first message has to be
picked) with `mailtriage import`, then times `mailtriage rules replay` over
it in-process (config and rules loading included, interpreter start-up not)
with the example rules plus one new rule. Then the same messages once more,
step by step, to show where a replayed ticket's time goes: the read-only
database read, parsing the raw bytes, and the two classifications.

Target: 10,000 tickets (a busy desk's month) in under a minute, so at
least 170 tickets a second: an admin waits for it before a deploy.
Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from mailtriage.classify import classify, load_rules  # noqa: E402
from mailtriage.cli import main as mailtriage  # noqa: E402
from mailtriage.config.load import load_settings  # noqa: E402
from mailtriage.mail.parse import parse  # noqa: E402
from mailtriage.store.readonly import first_customer_messages, open_readonly  # noqa: E402
from report import print_report  # noqa: E402
from synth import _message  # noqa: E402

NOW = "2026-03-20T12:00:00+00:00"
TARGET = 170          # tickets a second: 10,000 in under a minute
NEW_RULE = """\
rules:
  - name: printing
    when: {subject_or_body: [printer, printing]}
    set: {queue: hardware, tags: [printing]}
"""


def mailbox(folder: Path, tickets: int, seed: int = 7) -> int:
    """A Maildir with `tickets` conversations, every fourth with a reply; returns the message count."""
    rng = random.Random(seed)
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    start, written = datetime(2026, 2, 1, tzinfo=timezone.utc), 0
    for thread in range(tickets):
        parent: list[str] = []
        for position in range(2 if thread % 4 == 0 else 1):
            message_id, raw = _message(rng, written, thread, position, parent,
                                       start + timedelta(minutes=2 * thread + position))
            parent.append(message_id)
            (folder / "cur" / f"{written:07d}.replay:2,S").write_bytes(raw)
            written += 1
    return written


def site(folder: Path, database: str | None) -> tuple[Path, Path]:
    """`mailtriage init`, on SQLite in the folder or on `database`; (config, candidate rules)."""
    subprocess.run([sys.executable, "-m", "mailtriage", "init", str(folder)], check=True, capture_output=True)
    config = folder / "mailtriage.yaml"
    if database:
        config.write_text(config.read_text().replace("sqlite:///mailtriage.db", database))
    candidate = folder / "candidate.yaml"
    candidate.write_text((folder / "rules.yaml").read_text().replace("rules:\n", NEW_RULE, 1))
    return config, candidate


def timed_replay(config: Path, candidate: Path) -> tuple[float, dict]:
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = mailtriage(["--config", str(config), "rules", "replay", "--rules", str(candidate), "--json"])
    elapsed = time.perf_counter() - start
    assert code == 0, "rules replay failed"
    return elapsed, json.loads(out.getvalue())


def steps(config: Path, candidate: Path) -> dict[str, float]:
    """Milliseconds a ticket for each step of a replay, measured apart."""
    url = load_settings(config).database
    in_force, new = load_rules(config.parent / "rules.yaml"), load_rules(candidate)
    start = time.perf_counter()
    store = open_readonly(url)
    with store.session() as session:
        raws = [raw for _, raw in first_customer_messages(session)]
    store.close()
    read = time.perf_counter()
    mails = [parse(raw) for raw in raws]
    parsed = time.perf_counter()
    for mail in mails:
        classify(mail, in_force)
        classify(mail, new)
    done = time.perf_counter()
    per = 1000 / len(raws)
    return {"read": (read - start) * per, "parse": (parsed - read) * per, "classify twice": (done - parsed) * per}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--database", help="a SQLAlchemy URL of an empty database (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mt-replay.") as tmp:
        folder = Path(tmp)
        messages = mailbox(folder / "Maildir", args.tickets)
        config, candidate = site(folder / "site", args.database)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mailtriage", "--config", str(config), "--now", NOW, "import",
                        str(folder / "Maildir"), "--no-progress"], check=True, capture_output=True)
        imported = time.perf_counter() - start
        elapsed, result = timed_replay(config, candidate)
        split = steps(config, candidate)
    rate = result["messages"] / elapsed
    print_report({
        "database": "postgresql" if args.database else "sqlite",
        "messages imported (setup)": f"{messages} in {imported:.0f} s",
        "tickets replayed": result["messages"],
        "tickets changed": sum(result["by_rule"].values()),
        "replay time": f"{elapsed:.1f} s",
        "replay rate": f"{rate:.0f} tickets/s (target {TARGET}: {'met' if rate >= TARGET else 'MISSED'})",
        "per ticket": ", ".join(f"{name} {ms:.2f} ms" for name, ms in split.items()),
    }, "rules replay")
    return 0


if __name__ == "__main__":
    sys.exit(main())
