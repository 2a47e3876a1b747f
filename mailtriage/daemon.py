"""The daemon: wires the listener and the periodic jobs together.

Every job is a `run_once(now)` that tests and the CLI call directly; the
daemon only decides when. SIGTERM stops, SIGHUP reloads a config that
validates.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

from mailtriage.app import App, Config, build_app, load_config
from mailtriage.clock import Clock
from mailtriage.errors import ConfigError
from mailtriage.ingest.smtp import make_listener
from mailtriage.notify import outbox
from mailtriage.notify.send import make_sender

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: Config, clock: Clock):
        self.app = build_app(config, clock)
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()

    def current(self) -> App:
        return self.app

    def flush_outbox(self) -> None:
        settings = self.app.settings
        sender = make_sender(settings.smtp_out, settings.path("."))
        outbox.flush(self.app.store.sessions, sender, self.app.clock.now())

    def reload(self) -> None:
        try:
            config = load_config(self.app.config.path)
        except ConfigError as exc:
            log.error("SIGHUP: the new config does not validate, keeping the old one:\n%s", exc)
            return
        self.app.config = config
        log.warning("SIGHUP: configuration reloaded")

    def run(self) -> int:
        listener = make_listener(self.current)
        listener.start()
        settings = self.app.settings
        log.warning("mailtriage listening on %s:%s (%s)", settings.smtp_in.host, settings.smtp_in.port,
                    "LMTP" if settings.smtp_in.lmtp else "SMTP")
        jobs: list[tuple[Callable[[], None], float]] = [(self.flush_outbox, 5.0)]
        try:
            while not self.stop_event.is_set():
                if self.reload_event.is_set():
                    self.reload_event.clear()
                    self.reload()
                for job, _interval in jobs:
                    _run_job(job)
                self.stop_event.wait(5.0)
        finally:
            listener.stop()
            self.app.store.close()
        return 0


def _run_job(job: Callable[[], None]) -> None:
    try:
        job()
    except Exception:  # noqa: BLE001 - a failing job must not stop the daemon
        log.exception("job %s failed", getattr(job, "__name__", job))


def run_daemon(config: Config, clock: Clock) -> int:
    daemon = Daemon(config, clock)
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop_event.set())
    signal.signal(signal.SIGHUP, lambda *_: daemon.reload_event.set())
    return daemon.run()
