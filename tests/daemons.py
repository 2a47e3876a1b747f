"""`mailtriage run` as a real process, and sites that watch the test Dovecot.

`daemons` (fixture) starts daemons as subprocesses
(`.venv/bin/python -m mailtriage --config … run`) and kills whatever is
still running when the test ends. Import it into a test module with
`from daemons import daemons  # noqa: F401`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import Site, make_site
from servers import SMTP_PORT, free_port, wait_for

PASSWORD_ENV = "MT_TEST_IMAP_PASSWORD"
READY = "mailtriage daemon running"


def imap_site(root: Path, dovecot, *, folder: str = "INBOX", processed: str | None = None,  # type: ignore[no-untyped-def]
              idle: bool = True, poll: str = "60s", smtp_port: int = SMTP_PORT,
              database: str | None = None, retry_first: float = 0.2, max_attempts: int = 50) -> Site:
    """A site whose `support` mailbox is support@example.test on the test Dovecot,
    sending to the SMTP sink, with its own free port for the SMTP listener."""
    site = make_site(root, database=database, smtp_in_port=free_port())
    data = yaml.safe_load(site.config.read_text())
    imap = {"host": dovecot.host, "port": dovecot.port, "ssl": False, "username": "support@example.test",
            "password_env": PASSWORD_ENV, "folder": folder, "idle": idle, "poll_interval": poll}
    if processed:
        imap["processed_folder"] = processed
    data["mailboxes"][0]["imap"] = imap
    data["smtp_out"] = {"host": "127.0.0.1", "port": smtp_port, "timeout": "5s",
                        "retry_first": retry_first, "retry_max": "1s", "max_attempts": max_attempts,
                        "lease": "15s"}
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return site


def daemon_env(changes: dict[str, str | None] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAILTRIAGE_DATABASE", "MAILTRIAGE_CONFIG")}
    env[PASSWORD_ENV] = "support-secret"
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in (changes or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class DaemonProcess:
    def __init__(self, site: Site, log_path: Path, args: tuple[str, ...] = (),
                 env: dict[str, str | None] | None = None, run_args: tuple[str, ...] = ()):
        self.site, self.log_path = site, log_path
        command = [sys.executable, "-m", "mailtriage", "--config", str(site.config), *args, "run", *run_args]
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(command, cwd=site.dir, env=daemon_env(env), stdout=self.log_file,
                                     stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> "DaemonProcess":
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            return READY in self.log()
        wait_for(ready, timeout=timeout)
        return self

    def wait_log(self, text: str, timeout: float = 15.0) -> None:
        try:
            wait_for(lambda: text in self.log(), timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"{text!r} not in the daemon's log:\n{self.log()}") from None

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> float:
        """SIGTERM; returns how long the daemon took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        self.kill()
        self.log_file.close()


@pytest.fixture
def daemons(tmp_path):
    """daemons(site, *args, env={...}, run_args=(...)) starts `mailtriage ARGS run RUN_ARGS`
    for the site (not waiting for it)."""
    started: list[DaemonProcess] = []

    def start(site: Site, *args: str, env: dict[str, str | None] | None = None,
              run_args: tuple[str, ...] = ()) -> DaemonProcess:
        process = DaemonProcess(site, tmp_path / f"daemon-{len(started) + 1}.log", args, env, run_args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()

