"""The health side's own costs, apart from the noise of a whole daemon run:
`python bench/health.py`.

* per message: what a source adds for each message it takes in
  (`Metrics.taken`, and the relay's `Board.succeeded` per mail sent);
* the health job (`Monitor.run_once`) on a fresh SQLite site, every tick
  a refresh (the worst case: each tick writes every row) and a quiet tick
  (the usual one: a `SELECT 1`, nothing written), as a share of its 2 s period;
* a scrape of /metrics (`generate_latest`, the outbox counted in the database).

Prints a table and a JSON line.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from prometheus_client import generate_latest  # noqa: E402

from helpers import make_site, site_app  # noqa: E402
from mailtriage.health.board import Board  # noqa: E402
from mailtriage.health.metrics import Metrics  # noqa: E402
from mailtriage.health.monitor import Monitor  # noqa: E402
from mailtriage.model import Disposition, Outcome  # noqa: E402
from report import print_report  # noqa: E402

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
HEALTH_EVERY = 2.0


def timed(work, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    seconds = []
    for i in range(count):
        started = time.perf_counter()
        work(i)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> int:
    site = make_site(Path(tempfile.mkdtemp(prefix="mt-bench-health.")) / "site")
    app = site_app(site, T0)
    board = Board()
    metrics = Metrics(board, lambda: app.store)
    monitor = Monitor(board, lambda: app)
    monitor.load(T0)
    outcome = Outcome(Disposition.NEW, None, "MT-1", 1)
    per_message = timed(lambda i: (metrics.taken("imap", outcome),
                                   board.succeeded("relay", T0 + timedelta(milliseconds=i))), 100_000)
    for name in ("relay", "smtp_in", "mailbox:support", "mailbox:sales", "oauth2:support"):
        board.succeeded(name, T0)
    busy = timed(lambda i: (board.failed("relay", f"error {i % 2}", T0 + timedelta(minutes=i)),
                            monitor.run_once(T0 + timedelta(minutes=i))), 200)
    quiet = timed(lambda i: monitor.run_once(T0 + timedelta(minutes=200, milliseconds=i)), 200)
    scrape = timed(lambda i: generate_latest(metrics.registry), 200)
    results = {
        "per_message_us": round(statistics.median(per_message) * 1e6, 2),
        "health_tick_writing_median_ms": round(statistics.median(busy) * 1000, 2),
        "health_tick_quiet_median_ms": round(statistics.median(quiet) * 1000, 2),
        "health_tick_quiet_share_of_period_pct": round(statistics.median(quiet) / HEALTH_EVERY * 100, 3),
        "metrics_scrape_median_ms": round(statistics.median(scrape) * 1000, 2),
    }
    print_report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
