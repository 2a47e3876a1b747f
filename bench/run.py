"""The benchmarks in one command: `python bench/run.py [--full]`.

On a synthetic Maildir (bench/synth.py) it measures, in the same run:

- the floor any importer must pay: parsing each message (the stdlib, and
  mail-parser) plus one SQLite transaction with a Message-ID lookup and an
  insert;
- `mailtriage import` into a fresh SQLite database and into a fresh
  PostgreSQL database (a private cluster started like the tests' one);
- the same mailbox dealt out to three `mailtriage import` processes that
  share one PostgreSQL database at once, as three daemons would, and whether
  they made the same tickets as the single import;
- the peak RSS of a large import, run as a child process;
- the SLA sweep over many open tickets (bench/sla_sweep.py);
- arrival-to-acknowledgement latency through Dovecot IDLE (bench/daemon.py);
- 8 SMTP clients at once against the daemon's listener, and against a bare
  aiosmtpd sink (bench/smtp.py).

Then the speed issue's targets, each beside this run's figure and the floor
measured in the same run (bench/targets.py).

The quick run (the default) takes a few minutes; `--full` uses the issue's
sizes (10,000 messages, 100,000 for RSS, 1,000,000 tickets, 100 latency
messages, a burst of 1,000 and 1,000 SMTP messages) and takes much longer. Prints a table and,
last, one JSON line.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from report import last_json, print_json, print_table  # noqa: E402
from synth import generate  # noqa: E402
from targets import print_rows, rows  # noqa: E402

NOW = "2026-03-02T12:00:00+00:00"
QUICK = {"messages": 2_000, "rss_messages": 10_000, "tickets": 100_000, "latency": 50, "burst": 200, "smtp": 400}
FULL = {"messages": 10_000, "rss_messages": 100_000, "tickets": 1_000_000, "latency": 100, "burst": 1_000,
        "smtp": 1_000}


# -- the floor -------------------------------------------------------------------

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


def worker_steady(files: list[Path]) -> float:
    """CPU ms a message of the import's parsing worker's job (pipeline.readahead:
    digest, limits, parse, quotes, language both ways), here in one process
    with the language model loaded first: its steady state, start-up left out."""
    from mailtriage.mail.language import CANDIDATES, Detector
    from mailtriage.config.values import Limits
    from mailtriage.pipeline import readahead

    Detector(CANDIDATES).of_message(None, "", "the model is loaded before the clock starts")
    raws = [path.read_bytes() for path in files]
    start = time.process_time()
    readahead.prepare(raws, Limits(), CANDIDATES)     # the worker's whole job, as it runs it
    return 1000 * (time.process_time() - start) / len(raws)


# -- mailtriage import -------------------------------------------------------------

def make_site(site: Path, database: str) -> Path:
    """`mailtriage init` with the given database; returns the config path."""
    subprocess.run([sys.executable, "-m", "mailtriage", "init", str(site)], check=True, capture_output=True,
                   cwd=ROOT, env=_env())
    config = site / "mailtriage.yaml"
    config.write_text(config.read_text().replace("sqlite:///mailtriage.db", database))
    return config


@dataclass(frozen=True)
class Imported:
    """One `mailtriage import` child: its rate, peak RSS, and the CPU time it
    and its parsing worker spent (user + system) while importing."""

    rate: float                 # messages a second
    rss_mb: int
    worker_rss_mb: int
    importer_cpu_s: float
    worker_cpu_s: float

    def cpu_ms_per_message(self, messages: int) -> tuple[float, float]:
        return 1000 * self.importer_cpu_s / messages, 1000 * self.worker_cpu_s / messages


def import_child(config: Path, maildir: Path) -> Imported:
    """`mailtriage import` as a child process. Timed from inside the child, so
    interpreter start-up is not counted. The importer's peak is VmHWM, read
    by itself at the end (getrusage's ru_maxrss would also count the bench's
    own memory, which a forked child carries until its exec); the worker's is
    sampled from /proc every 0.1 s. The CPU times are the child's own
    getrusage over the import: RUSAGE_SELF, and RUSAGE_CHILDREN for the
    worker (reaped when the import ends)."""
    child = _start_import(config, maildir)
    workers = ChildrenRss(child.pid)
    finished = _finish(child)
    return Imported(_count(maildir) / finished.elapsed, finished.rss_mb, workers.stop(), finished.importer_cpu_s,
                    finished.worker_cpu_s)


class ChildrenRss:
    """The largest resident set any child of `pid` had, sampled until `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb, self.done = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.1):
            for child in _children(self.pid):
                self.peak_kb = max(self.peak_kb, _status_kb(child, "VmRSS"))

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.peak_kb // 1024


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            pass
    return found


def _status_kb(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def import_together(configs: list[Path], maildirs: list[Path]) -> float:
    """Several `mailtriage import`s at once, one per Maildir: messages a second
    in all, over the slowest one's time (they start together)."""
    children = [_start_import(config, maildir) for config, maildir in zip(configs, maildirs)]
    slowest = max(_finish(child).elapsed for child in children)
    return sum(_count(maildir) for maildir in maildirs) / slowest


def split_maildir(maildir: Path, parts: int) -> list[Path]:
    """Deal the files out round-robin, so every part holds pieces of the same
    conversations (the importers then meet on the same threads)."""
    folders = [maildir.with_name(f"{maildir.name}.{n}") for n in range(parts)]
    for folder in folders:
        for sub in ("tmp", "new", "cur"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(sorted((maildir / "cur").iterdir())):
        os.link(path, folders[index % parts] / "cur" / path.name)
    return folders


def _count(maildir: Path) -> int:
    return sum(1 for _ in (maildir / "cur").iterdir())


def _start_import(config: Path, maildir: Path) -> subprocess.Popen:
    code = ("import resource, sys, time\n"
            "from mailtriage.cli import main\n"
            "def cpu(who):\n"
            "    usage = resource.getrusage(who)\n"
            "    return usage.ru_utime + usage.ru_stime\n"
            "start, own = time.perf_counter(), cpu(resource.RUSAGE_SELF)\n"
            f"code = main(['--config', {str(config)!r}, '--now', {NOW!r}, 'import', {str(maildir)!r}, "
            "'--no-progress'])\n"
            "elapsed = time.perf_counter() - start\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
            "print(f'BENCH {elapsed} {hwm} {cpu(resource.RUSAGE_SELF) - own} {cpu(resource.RUSAGE_CHILDREN)}')\n"
            "sys.exit(code)\n")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=_env())


@dataclass(frozen=True)
class _Finished:
    elapsed: float
    rss_mb: int
    importer_cpu_s: float
    worker_cpu_s: float


def _finish(child: subprocess.Popen) -> _Finished:
    """What a child from `_start_import` reported of its import."""
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"import failed ({child.returncode}):\n{stdout}\n{stderr}")
    line = [row for row in stdout.splitlines() if row.startswith("BENCH ")][-1]
    _, elapsed, hwm, own, children = line.split()
    return _Finished(float(elapsed), int(hwm) // 1024, float(own), float(children))


def count_tickets(url: str) -> int:
    import psycopg
    from pg import libpq_dsn  # noqa: PLC0415 - tests/ is on the path (start_postgres)

    with psycopg.connect(libpq_dsn(url)) as conn:
        return conn.execute("SELECT count(*) FROM tickets").fetchone()[0]  # type: ignore[index]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MAILTRIAGE_DATABASE", "MAILTRIAGE_CONFIG")}


def start_postgres():  # type: ignore[no-untyped-def]
    """A private PostgreSQL cluster, as the tests start one (tests/pg.py)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pg import _start_private  # noqa: PLC0415

    return _start_private()


def stop_postgres(server) -> None:  # type: ignore[no-untyped-def]
    subprocess.run((server.run_as or []) + [server.pg_ctl, "-D", str(server.proc_dir / "data"),
                                            "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(server.proc_dir, ignore_errors=True)


# -- the other scripts ---------------------------------------------------------------

def run_script(name: str, *args: str, prefix: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True,
                          cwd=ROOT, env=_env())
    if done.returncode != 0:
        return {f"{prefix}_error": (done.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return {f"{prefix}_{key}": value for key, value in last_json(done.stdout).items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes (takes long)")
    parser.add_argument("--messages", type=int, help="messages for the import rates")
    parser.add_argument("--rss-messages", type=int, help="messages for the RSS import (0: skip)")
    parser.add_argument("--tickets", type=int, help="open tickets for the SLA sweep (0: skip)")
    parser.add_argument("--latency", type=int, help="messages for the IDLE latency (0: skip the daemon bench)")
    parser.add_argument("--burst", type=int, help="messages in the daemon burst")
    parser.add_argument("--smtp", type=int, help="messages from 8 SMTP clients to the listener (0: skip)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    sizes = dict(FULL if args.full else QUICK)
    sizes.update({key: value for key, value in vars(args).items() if key in sizes and value is not None})

    results: dict[str, object] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    with tempfile.TemporaryDirectory(prefix="mt-bench.") as tmp:
        root = Path(tmp)
        maildir = generate(root / "Maildir", sizes["messages"])
        files = sorted((maildir / "cur").iterdir())
        results["messages"] = len(files)
        results["floor_stdlib_sqlite_msgs_per_s"] = round(floor_stdlib(files, root / "floor1.db"), 1)
        results["floor_mailparser_sqlite_msgs_per_s"] = round(floor_mailparser(files, root / "floor2.db"), 1)
        results["import_worker_steady_cpu_ms_per_msg"] = round(worker_steady(files), 2)
        config = make_site(root / "sqlite", f"sqlite:///{root / 'sqlite' / 'bench.db'}")
        imported = import_child(config, maildir)
        rate = imported.rate
        results["import_sqlite_msgs_per_s"] = round(rate, 1)
        results["import_sqlite_peak_mb"] = imported.rss_mb
        importer_ms, worker_ms = imported.cpu_ms_per_message(len(files))
        results["import_sqlite_importer_cpu_ms_per_msg"] = round(importer_ms, 2)
        results["import_sqlite_worker_cpu_ms_per_msg"] = round(worker_ms, 2)
        results["import_sqlite_vs_mailparser_floor"] = round(rate / results["floor_mailparser_sqlite_msgs_per_s"], 3)
        if not args.no_postgres:
            server = start_postgres()
            try:
                url = server.create_database("mt_bench")
                config = make_site(root / "pg", url)
                imported = import_child(config, maildir)
                rate = imported.rate
                results["import_postgresql_msgs_per_s"] = round(rate, 1)
                results["import_postgresql_importer_cpu_ms_per_msg"] = round(
                    imported.cpu_ms_per_message(len(files))[0], 2)
                results["import_postgresql_vs_mailparser_floor"] = round(
                    rate / results["floor_mailparser_sqlite_msgs_per_s"], 3)
                # The same mailbox by three importers at once on one database (as three daemons
                # would share it): the rate, and whether they made the same tickets as one did.
                shared = server.create_database("mt_bench3")
                configs = [make_site(root / f"pg3-{n}", shared) for n in range(3)]
                subprocess.run([sys.executable, "-m", "mailtriage", "--config", str(configs[0]), "db", "upgrade"],
                               check=True, capture_output=True, cwd=ROOT, env=_env())
                results["import_postgresql_3_processes_msgs_per_s"] = round(
                    import_together(configs, split_maildir(maildir, 3)), 1)
                results["import_postgresql_3_processes_same_tickets"] = count_tickets(shared) == count_tickets(url)
                results["postgresql_note"] = "private cluster, fsync=off (as in the tests)"
            finally:
                stop_postgres(server)
        for folder in root.glob("Maildir*"):
            shutil.rmtree(folder)
        if sizes["rss_messages"]:
            big = generate(root / "Big", sizes["rss_messages"], seed=7)
            config = make_site(root / "rss", f"sqlite:///{root / 'rss' / 'bench.db'}")
            imported = import_child(config, big)
            results["rss_import_messages"] = sizes["rss_messages"]
            results["rss_import_msgs_per_s"] = round(imported.rate, 1)
            results["rss_import_peak_mb"] = imported.rss_mb
            results["rss_import_worker_peak_mb"] = imported.worker_rss_mb
            shutil.rmtree(big)
    if sizes["tickets"]:
        results.update(run_script("sla_sweep.py", "--tickets", str(sizes["tickets"]), prefix="sla"))
    if sizes["latency"]:
        results.update(run_script("daemon.py", "--latency", str(max(sizes["latency"], 50)),
                                  "--burst", str(sizes["burst"]), prefix="daemon"))
    if sizes["smtp"]:
        results.update(run_script("smtp.py", "--messages", str(sizes["smtp"]), prefix="smtp"))
    results["load_average_1m"] = round(os.getloadavg()[0], 2)
    found = rows(results)
    results["targets"] = [vars(row) for row in found]
    print_table(results)
    print_rows(found)
    print_json(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
