"""sd_notify (daemon/notify.py) against real AF_UNIX datagram sockets, a file
one and an abstract one; the JSON log formatter (daemon/logs.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import uuid
from datetime import datetime

from mailtriage.daemon.logs import json_formatter
from mailtriage.daemon.notify import Notifier


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def receive(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    found = []
    while True:
        try:
            found.append(sock.recv(4096).decode())
        except BlockingIOError:
            return found


def test_ready_and_watchdog_at_half_the_interval_to_a_socket_file(tmp_path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        clock = Clock()
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "10000000"}, monotonic=clock)
        assert notifier.watchdog_every == 5.0
        notifier.ready("running")
        for step in (1.0, 3.0, 1.0, 4.9, 0.1):          # pings at 100 (ready), 105, 110
            clock.now += step
            notifier.watchdog()
        notifier.stopping()
        assert receive(sock) == ["READY=1\nSTATUS=running", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1",
                                 "STOPPING=1\nSTATUS=stopping"]


def test_an_abstract_socket_is_named_with_an_at_sign():
    name = f"mailtriage-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready("up")
        assert receive(sock) == ["READY=1\nSTATUS=up"]


def test_nothing_without_systemd_and_no_watchdog_for_another_pid(tmp_path):
    assert not Notifier({}).enabled and Notifier({}).send("READY=1") is False
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "60000000"}).watchdog_every == 30.0
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}).watchdog_every is None
    mine = str(os.getpid())
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": mine}).watchdog_every == 1.0
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "junk"}).watchdog_every is None


def test_a_socket_gone_is_logged_once_and_never_raised(tmp_path, caplog):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="mailtriage.daemon.notify"):
        assert notifier.send("WATCHDOG=1") is False
        assert notifier.send("WATCHDOG=1") is False
    assert len(caplog.records) == 1 and "cannot send WATCHDOG to NOTIFY_SOCKET" in caplog.records[0].message


def test_json_lines_carry_time_level_logger_message_and_the_traceback():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("mailtriage.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("outbox %d: sent to %s", 7, "anna@customer.example")
        try:
            raise KeyError("a bug")
        except KeyError:
            logger.exception("job sla crashed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {k: first[k] for k in ("level", "logger", "message")} == {
        "level": "WARNING", "logger": "mailtriage.test.json", "message": "outbox 7: sent to anna@customer.example"}
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None and "exception" not in first
    assert second["level"] == "ERROR" and second["exception"].startswith("Traceback (most recent call last)")
    assert "KeyError: 'a bug'" in second["exception"]


def test_alive_pings_at_most_once_a_second_and_never_slower_than_the_watchdog(tmp_path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        clock = Clock()
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "10000000"}, monotonic=clock)
        notifier.ready("running")                        # a ping at 100
        for step in (0.3, 0.3, 0.5, 0.2, 2.0):           # alive() at 100.3 100.6 101.1 101.3 103.3
            clock.now += step
            notifier.alive()
        assert receive(sock)[1:] == ["WATCHDOG=1"] * 3              # READY's, then at 101.1 and 103.3 only
        assert Notifier({}).alive() is None                          # without systemd: nothing


def test_a_job_longer_than_the_watchdog_interval_still_pings_during_it(tmp_path):
    """The daemon's wiring: the scheduler pings after each job, the outbox flush
    before each mail (progress=notifier.alive); here a job of 5 slow steps."""
    from mailtriage.clock import FixedClock
    from mailtriage.daemon.scheduler import Scheduler

    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        clock = Clock()
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}, monotonic=clock)
        pings: list[float] = []

        def flush(_now: datetime) -> None:               # 5 mails, 4.7 s: more than twice WatchdogSec
            for seconds in (0.8, 0.8, 0.8, 0.8, 1.5):
                notifier.alive()                         # outbox.flush's progress(), before each mail
                pings.extend([clock.now] * len(receive(sock)))
                clock.now += seconds

        scheduler = Scheduler(FixedClock(datetime.fromisoformat("2026-03-02T09:00:00+00:00")),
                              after_job=notifier.alive)
        scheduler.add("outbox", 60, flush)
        notifier.ready("running")
        pings.extend([clock.now] * (len(receive(sock)) - 1))          # READY's own ping
        scheduler.run_pending()
        pings.extend([clock.now] * len(receive(sock)))                # after the job
        assert [round(at, 1) for at in pings] == [100.0, 101.6, 103.2, 104.7]   # never 2 s apart
