"""One command for the benchmarks: `python bench/run.py [--messages N]`.

Generates a synthetic Maildir, imports it with mailtriage into a fresh
SQLite database, and measures in the same run the floor any importer must
pay: parsing each message plus one SQLite transaction with a Message-ID
lookup and an insert. Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth import generate  # noqa: E402


def floor_stdlib(files: list[Path], db_path: Path) -> float:
    """stdlib parse + one SQLite transaction per message (lookup + insert)."""
    return _floor(files, db_path, lambda raw: email.message_from_bytes(raw, policy=email.policy.default))


def floor_mailparser(files: list[Path], db_path: Path) -> float:
    import mailparser

    return _floor(files, db_path, mailparser.parse_from_bytes)


def _floor(files: list[Path], db_path: Path, parse) -> float:  # type: ignore[no-untyped-def]
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, message_id TEXT, subject TEXT, raw BLOB)")
    db.execute("CREATE INDEX m_mid ON m (message_id)")
    start = time.perf_counter()
    for path in files:
        raw = path.read_bytes()
        msg = parse(raw)
        message_id = str(getattr(msg, "message_id", None) or msg.get("Message-ID", ""))
        subject = str(getattr(msg, "subject", None) or msg.get("Subject", ""))
        db.execute("BEGIN")
        db.execute("SELECT id FROM m WHERE message_id = ?", (message_id,)).fetchone()
        db.execute("INSERT INTO m (message_id, subject, raw) VALUES (?, ?, ?)", (message_id, subject, raw))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return len(files) / elapsed


def mailtriage_import(maildir: Path, site: Path) -> tuple[float, str]:
    from mailtriage.cli import main

    config = site / "mailtriage.yaml"
    main(["init", str(site)])
    database = f"sqlite:///{site / 'bench.db'}"
    config.write_text(config.read_text().replace("sqlite:///mailtriage.db", database))
    count = sum(1 for _ in (maildir / "cur").iterdir())
    start = time.perf_counter()
    code = main(["--config", str(config), "--now", "2026-03-02T12:00:00+00:00", "import", str(maildir),
                 "--no-progress"])
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"import failed with {code}")
    return count / elapsed, database


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mt-bench.") as tmp:
        root = Path(tmp)
        maildir = generate(root / "Maildir", args.messages)
        files = sorted((maildir / "cur").iterdir())
        os.environ.pop("MAILTRIAGE_DATABASE", None)
        results = {
            "messages": len(files),
            "floor_stdlib_sqlite_msgs_per_s": round(floor_stdlib(files, root / "floor1.db"), 1),
            "floor_mailparser_sqlite_msgs_per_s": round(floor_mailparser(files, root / "floor2.db"), 1),
        }
        rate, _ = mailtriage_import(maildir, root / "site")
        results["mailtriage_import_sqlite_msgs_per_s"] = round(rate, 1)
        results["import_vs_stdlib_floor"] = round(rate / results["floor_stdlib_sqlite_msgs_per_s"], 3)
        results["import_vs_mailparser_floor"] = round(rate / results["floor_mailparser_sqlite_msgs_per_s"], 3)
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
