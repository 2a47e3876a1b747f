"""Daemon benchmark: `python bench/daemon.py [--latency N] [--burst N]`.

Starts a private Dovecot (tests/servers.py) and an aiosmtpd sink on free
ports, then `mailtriage run` as a real process watching INBOX with IDLE,
sending acknowledgements to the sink, on a fresh SQLite database. Measures:

* latency: a message APPENDed to INBOX (as a delivery agent would put it
  there) until its acknowledgement reaches the sink, one message at a time;
  median, 99th percentile and maximum over N messages (default 100);
* burst: N messages (default 1,000) APPENDed as fast as Dovecot takes them;
  the sustained rate is N / (last acknowledgement − first APPEND), and how
  long each message waited for its acknowledgement (median, maximum).
* with `--http`: the daemon also serves `http.listen`, and a scraper reads
  /metrics and /healthz every second throughout (as Prometheus and a load
  balancer would); then /healthz latency: median, 95th percentile and
  maximum over `--healthz` requests (default 1,000), each on a new connection.

The heartbeats and counters are part of every daemon; to measure their cost,
run this file against a tree without them as well: the daemon is started
from PYTHONPATH (`PYTHONPATH=/path/to/other/tree python bench/daemon.py`).

Every message comes from its own sender (the per-sender auto-reply limit
would otherwise hold acknowledgements back). Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from aiosmtpd.controller import Controller  # noqa: E402
from imapclient import IMAPClient  # noqa: E402

from daemons import DaemonProcess, imap_site  # noqa: E402
from helpers import eml  # noqa: E402
from report import print_report  # noqa: E402
from servers import free_port, start_dovecot, wait_for  # noqa: E402

USER, PASSWORD = "support@example.test", "support-secret"
IN_REPLY_TO = re.compile(rb"^In-Reply-To:\s*(<[^>]+>)", re.IGNORECASE | re.MULTILINE)


class TimingSink:
    """An aiosmtpd handler that notes when each acknowledgement arrives."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        at = time.monotonic()
        match = IN_REPLY_TO.search(envelope.original_content.split(b"\r\n\r\n", 1)[0])
        with self.lock:
            self.count += 1
            if match:
                self.arrived.setdefault(match.group(1).decode(), at)
        return "250 OK"


def message(tag: str, i: int) -> tuple[str, bytes]:
    message_id = f"<{tag}-{i}@customer.example>"
    return message_id, eml(f"Printer {i} on floor {i % 7} is jammed", sender=f"c-{tag}-{i}@customer.example",
                           message_id=message_id, body=f"Hello,\n\nprinter {i} jams on every page.\n")


def latency(imap: IMAPClient, sink: TimingSink, count: int, tag: str = "lat") -> list[float]:
    seconds = []
    for i in range(count):
        message_id, raw = message(tag, i)
        imap.append("INBOX", raw)
        landed = time.monotonic()
        wait_for(lambda: message_id in sink.arrived, timeout=120, interval=0.002)
        seconds.append(sink.arrived[message_id] - landed)
    return seconds


def idle_floor(dovecot, imap: IMAPClient, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    """What any IDLE client waits: APPEND until a second connection in IDLE
    hears EXISTS (Dovecot batches its change notifications)."""
    watcher = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=30)
    watcher.login(USER, PASSWORD)
    watcher.create_folder("Floor")
    watcher.select_folder("Floor")
    seconds = []
    for i in range(count):
        watcher.idle()
        imap.append("Floor", message("floor", i)[1])
        landed = time.monotonic()
        while not any(len(r) > 1 and r[1] == b"EXISTS" for r in watcher.idle_check(timeout=5)):
            pass
        seconds.append(time.monotonic() - landed)
        watcher.idle_done()
    watcher.logout()
    return seconds


def burst(imap: IMAPClient, sink: TimingSink, count: int) -> dict[str, float]:
    """Also how long each customer waited for the acknowledgement (APPEND to its arrival)."""
    landed: dict[str, float] = {}
    first = time.monotonic()
    for i in range(count):
        message_id, raw = message("burst", i)
        imap.append("INBOX", raw)
        landed[message_id] = time.monotonic()
    appended = time.monotonic()
    wait_for(lambda: all(m in sink.arrived for m in landed), timeout=1800, interval=0.05)
    last = max(sink.arrived[m] for m in landed)
    waited = [sink.arrived[m] - at for m, at in landed.items()]
    return {"burst_messages": count, "burst_append_s": round(appended - first, 2),
            "burst_total_s": round(last - first, 2), "burst_rate_msgs_per_s": round(count / (last - first), 1),
            "burst_ack_wait_median_s": round(statistics.median(waited), 2),
            "burst_ack_wait_max_s": round(max(waited), 2)}


class Scraper(threading.Thread):
    """GET /metrics and /healthz once a second until stopped."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.done, self.scrapes = base, threading.Event(), 0

    def run(self) -> None:
        while not self.done.wait(1.0):
            for path in ("/metrics", "/healthz"):
                try:
                    urllib.request.urlopen(self.base + path, timeout=5).close()
                except urllib.error.HTTPError:
                    pass
            self.scrapes += 1


def healthz_latency(base: str, count: int) -> dict[str, float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        urllib.request.urlopen(base + "/healthz", timeout=5).read()
        seconds.append(time.perf_counter() - started)
    return {"healthz_requests": count, "healthz_median_ms": round(statistics.median(seconds) * 1000, 2),
            "healthz_p95_ms": round(percentile(seconds, 0.95) * 1000, 2),
            "healthz_max_ms": round(max(seconds) * 1000, 2)}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=100, help="messages for the latency run (>= 50)")
    parser.add_argument("--burst", type=int, default=1000, help="messages in the burst")
    parser.add_argument("--http", action="store_true", help="serve http.listen and scrape it throughout")
    parser.add_argument("--healthz", type=int, default=1000, help="/healthz requests timed (with --http)")
    args = parser.parse_args()
    os.environ.pop("MAILTRIAGE_DATABASE", None)
    dovecot = start_dovecot(free_port())
    sink = TimingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    work = Path(tempfile.mkdtemp(prefix="mt-bench-daemon."))
    daemon = None
    try:
        site = imap_site(work / "site", dovecot, smtp_port=controller.port)
        base = f"http://127.0.0.1:{free_port()}"
        if args.http:
            data = yaml.safe_load(site.config.read_text())
            data["http"] = {"listen": base.removeprefix("http://")}
            site.config.write_text(yaml.safe_dump(data, sort_keys=False))
        daemon = DaemonProcess(site, work / "daemon.log").wait_ready()
        scraper = Scraper(base)
        if args.http:
            scraper.start()
        daemon.wait_log("waiting with IDLE")
        imap = IMAPClient("127.0.0.1", port=dovecot.port, ssl=False, timeout=30)
        imap.login(USER, PASSWORD)
        latency(imap, sink, 3, tag="warm-up")                   # imports, templates, caches
        seconds = latency(imap, sink, args.latency)
        results: dict[str, object] = {
            "latency_messages": len(seconds),
            "latency_median_ms": round(statistics.median(seconds) * 1000, 1),
            "latency_p99_ms": round(percentile(seconds, 0.99) * 1000, 1),
            "latency_max_ms": round(max(seconds) * 1000, 1),
        }
        floor = idle_floor(dovecot, imap, 20)
        results["idle_notify_floor_median_ms"] = round(statistics.median(floor) * 1000, 1)
        results["mailtriage_share_median_ms"] = round(
            (statistics.median(seconds) - statistics.median(floor)) * 1000, 1)
        results.update(burst(imap, sink, args.burst))
        scraper.done.set()
        if args.http:
            scraper.join()
            results["scrapes_during_run"] = scraper.scrapes
            results.update(healthz_latency(base, args.healthz))
        results["http"] = args.http
        results["daemon_tree"] = os.environ.get("PYTHONPATH") or str(ROOT)
        results["acknowledgements_received"] = sink.count
        results["cpus"] = os.cpu_count()
        results["load_average_1m"] = round(os.getloadavg()[0], 2)
        results["python"] = platform.python_version()
        imap.logout()
    finally:
        if daemon is not None:
            daemon.close()
        controller.stop()
        dovecot.stop()
        shutil.rmtree(dovecot.base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print_report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
