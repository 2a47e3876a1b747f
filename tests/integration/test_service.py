"""Running as a systemd service: the unit file as systemd-analyze reads it, the
daemon's sd_notify messages on a NOTIFY_SOCKET the test listens on, JSON log
lines, and the daemon under the unit's MemoryDenyWriteExecute= — each with
the real daemon process."""

from __future__ import annotations

import json
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from daemons import daemon_env, daemons  # noqa: F401  (daemons: the fixture)
from helpers import ROOT, eml, make_site, need
from servers import SMTP_PORT, free_port, wait_for

UNIT = ROOT / "contrib" / "systemd" / "mailtriage.service"
INSTALLED = "/opt/mailtriage/.venv/bin/mailtriage"          # the unit's ExecStart binary


# ------------------------------------------------------------------ the unit file
def verify(unit_text: str, folder: Path) -> str:
    """What `systemd-analyze verify` says about the unit: '' when it is clean.
    Its exit status is 0 for unknown keys and bad values too (systemd only
    warns and ignores them), so any output counts. ExecStart must name an
    existing binary: the copy names this checkout's."""
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze is not installed (apt-get install systemd)")
    binary = Path(sys.executable).with_name("mailtriage")
    copy = folder / "mailtriage.service"
    copy.write_text(unit_text.replace(INSTALLED, str(binary if binary.exists() else sys.executable)))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)], capture_output=True, text=True,
                         timeout=60)
    return (out.stdout + out.stderr).strip() or ("" if out.returncode == 0 else f"exit {out.returncode}")


def test_the_unit_file_passes_systemd_analyze_verify(tmp_path):
    text = UNIT.read_text()
    assert INSTALLED in text                                   # the copy's ExecStart replacement applies
    assert verify(text, tmp_path) == ""
    for line in ("Type=notify", "WatchdogSec=60", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/mailtriage",
                 "MemoryDenyWriteExecute=yes", "SystemCallFilter=@system-service", "User=mailtriage",
                 "StateDirectory=mailtriage", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):
        assert line in text.splitlines(), line


@pytest.mark.parametrize("broken, said", [
    (("Type=notify", "Type=notifyy"), "Failed to parse service type"),
    (("WatchdogSec=60", "WatchdogSec=sixty"), "Failed to parse sec value"),
    (("ProtectSystem=strict", "ProtectSytem=strict"), "Unknown key"),
])
def test_a_broken_unit_fails_the_same_check(tmp_path, broken, said):
    old, new = broken
    assert said in verify(UNIT.read_text().replace(old, new), tmp_path)


# ------------------------------------------------------------------ sd_notify
class NotifySocket:
    """An AF_UNIX datagram socket, as systemd's NOTIFY_SOCKET is."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.seen: list[str] = []

    def expect(self, line: str, timeout: float = 20.0) -> str:
        """The next datagram holding `line` (the ones before it are kept in `seen`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.seen.append(message)
            if line in message.splitlines():
                return message
        raise AssertionError(f"no {line} within {timeout} s; got {self.seen}")

    def close(self) -> None:
        self.sock.close()


def test_ready_watchdog_reloading_and_stopping_reach_the_notify_socket(tmp_path, daemons):  # noqa: F811
    port = free_port()
    site = make_site(tmp_path / "site", smtp_in_port=port)
    notify = NotifySocket(tmp_path / "notify")
    try:
        daemon = daemons(site, env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"})
        ready = notify.expect("READY=1", timeout=30)
        assert f"STATUS=running: SMTP on 127.0.0.1:{port}, 0 IMAP mailbox(es)" in ready.splitlines()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass                                                 # READY means listening, not soon listening
        pings = [time.monotonic() for _ in range(3) if notify.expect("WATCHDOG=1", timeout=5)]
        assert pings[-1] - pings[0] < 4                          # every 0.5 s (WATCHDOG_USEC / 2), not once
        daemon.send(signal.SIGHUP)
        assert notify.expect("RELOADING=1").startswith("RELOADING=1\nMONOTONIC_USEC=")
        notify.expect("READY=1")
        daemon.send(signal.SIGTERM)
        notify.expect("STOPPING=1")
        assert daemon.proc.wait(10) == 0
    finally:
        notify.close()


def test_no_watchdog_pings_for_another_process(tmp_path, daemons):  # noqa: F811
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    notify = NotifySocket(tmp_path / "notify")
    try:
        daemon = daemons(site, env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000",
                                    "WATCHDOG_PID": "1"})
        notify.expect("READY=1", timeout=30)
        daemon.send(signal.SIGTERM)
        notify.expect("STOPPING=1")
        assert not any("WATCHDOG=1" in message for message in notify.seen)
    finally:
        notify.close()


# ------------------------------------------------------------------ JSON logs
def relay_site(root: Path, port: int = 8025):  # type: ignore[no-untyped-def]
    """A site whose relay is the sink, with a login (the password must never be logged)."""
    return make_site(root, smtp_in_port=port,
                     smtp_out=(f"{{host: 127.0.0.1, port: {SMTP_PORT}, username: mailtriage, "
                               "password_env: MT_TEST_RELAY_PASSWORD, timeout: 5s, retry_first: 0.2}"))


RELAY_PASSWORD = "s3cret-relay-password"


def deliver(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("carla@customer.example", ["support@example.test"], eml(subject))


def test_every_line_of_the_daemon_is_a_json_object(tmp_path, daemons, smtp_sink):  # noqa: F811
    port = free_port()
    site = relay_site(tmp_path / "site", port)
    daemon = daemons(site, run_args=("--log-format", "json"),
                     env={"MT_TEST_RELAY_PASSWORD": RELAY_PASSWORD}).wait_ready()
    deliver(port, "Printer on fire")
    daemon.wait_log("sent to carla@customer.example")
    daemon.send(signal.SIGHUP)
    daemon.wait_log("SIGHUP: configuration reloaded")
    assert daemon.stop() < 10
    lines = daemon.log().splitlines()
    assert len(lines) >= 5
    records = [json.loads(line) for line in lines]            # each line parses, or this raises
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        assert datetime.fromisoformat(record["time"]).utcoffset() is not None
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    messages = [r["message"] for r in records]
    assert any(m.startswith("mailtriage daemon running: pid") for m in messages)
    assert any(m.startswith("mailtriage daemon stopped") for m in messages)
    assert RELAY_PASSWORD not in daemon.log()


def test_a_refused_start_is_json_too(tmp_path, daemons):  # noqa: F811
    site = relay_site(tmp_path / "site")
    daemon = daemons(site, run_args=("--log-format", "json"), env={"MT_TEST_RELAY_PASSWORD": None})
    assert daemon.proc.wait(30) == 2
    [record] = [json.loads(line) for line in daemon.log().splitlines()]
    assert record["level"] == "ERROR" and "MT_TEST_RELAY_PASSWORD is not set" in record["message"]


# ------------------------------------------------------------------ MemoryDenyWriteExecute
def scalar_events(site, kind: str) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for event in site.ticket("MT-1")["events"] if event["type"] == kind)


PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1


def test_the_daemon_works_without_writable_executable_memory(tmp_path, database_url):
    """The unit's MemoryDenyWriteExecute=yes, as the kernel's own switch for it
    (prctl PR_SET_MDWE, Linux 6.3; kept across execve): the daemon takes a mail
    through SMTP, stores, classifies and acknowledges it, with a knowledge-base
    suggestion (numpy, bm25s, PyStemmer), on SQLite and on PostgreSQL (psycopg),
    with no W+X page."""
    probe = subprocess.run([sys.executable, "-c", f"import ctypes; print(ctypes.CDLL(None).prctl({PR_SET_MDWE}, "
                            f"{PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0))"], capture_output=True, text=True)
    need(probe.stdout.strip() == "0", "this kernel has no PR_SET_MDWE (Linux 6.3 or later)")
    port = free_port()
    site = make_site(tmp_path / "site", smtp_in_port=port, database=database_url)
    shutil.copytree(ROOT / "tests" / "fixtures" / "kb", site.dir / "kb")
    with site.config.open("a") as config:
        config.write("knowledge_base: kb/\n")
    wrapper = ("import ctypes, os, sys\n"
               f"assert ctypes.CDLL(None).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) == 0\n"
               "os.execv(sys.executable, [sys.executable, '-m', 'mailtriage', *sys.argv[1:]])\n")
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", wrapper, "--config", str(site.config), "run",
                                 "--log-format", "json"], cwd=site.dir, env=daemon_env(), stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: proc.poll() is not None or "mailtriage daemon running" in log_path.read_text(),
                     timeout=30)
            assert proc.poll() is None, log_path.read_text()
            deliver(port, "VPN is down")
            wait_for(lambda: "sent to carla@customer.example" in log_path.read_text(), timeout=20)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert "PermissionError" not in log_path.read_text()
    [ack] = site.outbox_files()
    assert b"Subject: [MT-1] " in ack
    assert scalar_events(site, "kb-suggested") == 1
