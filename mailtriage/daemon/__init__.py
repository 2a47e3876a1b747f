"""The daemon (`mailtriage run`): one process that takes mail in, sends the
outbox and runs the periodic jobs.

    main thread   the scheduler: outbox · housekeeping · SLA sweep · daily digest · IMAP poll ticks · health
                  systemd's READY/WATCHDOG/STOPPING (daemon/notify.py)
    threads       one IMAP watcher per mailbox with `imap:` (IDLE, or a poll tick)
                  the SMTP/LMTP listener (aiosmtpd's own event loop)
                  the HTTP listener with `http:` (uvicorn's own event loop; daemon/health.py)

Every job is a `run_once(now)` that the CLI and the tests call directly; the
daemon only decides when. New mail triggers the outbox at once, so an
acknowledgement does not wait for the next tick. SIGTERM/SIGINT stop within
a few seconds, SIGHUP swaps in a config that validates, a crashed job or
watcher is restarted with backoff a bounded number of times, and on SQLite a
lock file keeps a second daemon off the database.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from datetime import datetime, timedelta
from types import ModuleType

from sqlalchemy import delete

from mailtriage import pipeline
from mailtriage.app import App, Config, build_app, load_config
from mailtriage.clock import Clock
from mailtriage.errors import ConfigError, MailtriageError, Problem
from mailtriage.daemon.health import HEALTH_EVERY, Health
from mailtriage.ingest.imap import ImapWatcher, Taken
from mailtriage.ingest.smtp import Listener
from mailtriage.notify import outbox
from mailtriage.notify.relay import Relay
from mailtriage.daemon.notify import Notifier
from mailtriage.daemon.scheduler import Scheduler, supervise
from mailtriage.web import users
from mailtriage.sla import digest
from mailtriage.config.load import imap_password, oauth2_problems, smtp_password
from mailtriage.config.values import Mailbox, Settings
from mailtriage.model import Outcome
from mailtriage.store.lock import DaemonLock, lock_for
from mailtriage.store.schema import AutoReplyLog

log = logging.getLogger(__name__)

OUTBOX_EVERY = 5.0              # seconds; new mail also triggers the outbox at once
OUTBOX_BATCH = 50               # rows per run, so a long queue does not hold up the other jobs
RETRY_GRANULARITY = 0.5         # seconds; the soonest a deferred row is looked at again
HOUSEKEEPING_EVERY = 600.0
SLA_EVERY = 30.0
SLA_MODULE = "mailtriage.sla.sweep"
DIGEST_EVERY = 30.0             # seconds; the digest goes within this of `digest.at`
RECOVER_BATCH = 100
STOP_WITHIN = 5.0               # seconds given to watcher threads to finish at SIGTERM
TICK = 0.5                      # the main loop's longest sleep: how soon a signal is acted on


class Daemon:
    def __init__(self, config: Config, clock: Clock):
        check_passwords(config.settings)
        self.lock: DaemonLock | None = lock_for(config.settings.database)
        if self.lock is not None:
            self.lock.acquire()           # raises AlreadyRunning for a second daemon
        try:
            self.app = build_app(config, clock)
        except BaseException:
            self.release()
            raise
        self.notifier = Notifier()        # systemd's NOTIFY_SOCKET, when it gave one
        self.scheduler = Scheduler(clock, after_job=self.notifier.alive)    # the watchdog between jobs
        self.digest_said = ""             # the last reason the digest job gave for sending none
        self.health = Health(self.current)
        self.relay = self._relay()                                      # its outages, across outbox runs
        # Set by signal handlers, which must not take locks (an Event would): the
        # main loop looks at them at least every TICK seconds.
        self.stop_requested = False
        self.reload_requested = False
        self.listener: Listener | None = None
        self.watchers: dict[str, tuple[Mailbox, ImapWatcher, threading.Thread]] = {}

    def current(self) -> App:
        return self.app

    # ------------------------------------------------------------ jobs
    def flush_outbox(self, now: datetime) -> None:
        result = outbox.run_once(self.app, now, limit=OUTBOX_BATCH, stop=lambda: self.stop_requested,
                                 relay=self.relay, progress=self.notifier.alive)   # and between mails
        if result.total >= OUTBOX_BATCH and result.relay_down is None:
            self.scheduler.trigger("outbox")       # more may be due: go on after the other jobs
            return
        with self.app.store.session() as session:
            due = outbox.next_due(session)
        if due is not None and self.relay.not_before is not None:
            due = max(due, self.relay.not_before)  # new mail waits for a relay that is down, too
        if due is not None:                        # a deferred row: retry on time, not at the next tick
            self.scheduler.run_in("outbox", max(RETRY_GRANULARITY, (due - now).total_seconds()))

    def housekeeping(self, now: datetime) -> None:
        """Messages quarantined or left pending are tried again (a bounded number
        of times, pipeline.retry_quarantined); old rate-limit rows go."""
        pipeline.retry_quarantined(self.app, now)
        window = max(self.app.settings.auto_reply.per_sender_window * 2, timedelta(days=1))
        with self.app.store.session() as session, session.begin():
            session.execute(delete(AutoReplyLog).where(AutoReplyLog.at < now - window))

    def sla_sweep(self, now: datetime) -> None:
        module = sla_module()
        if module is not None:
            result = module.run_once(self.app, now)
            self.health.metrics.breached(getattr(result, "breaches_by_severity", {}))
            self.scheduler.trigger("outbox")

    def send_digest(self, now: datetime) -> None:
        """The daily digest, once its time has come (sla/digest.py); why not, once per reason."""
        result, _ = digest.run_once(self.app, now)
        if result.sent:
            self.scheduler.trigger("outbox")
        elif result.why != self.digest_said:           # not every 30 s
            self.digest_said = result.why
            log.info("digest: %s", result.why)

    def health_check(self, now: datetime) -> None:
        dead = [name for name, (_m, watcher, thread) in self.watchers.items()
                if not thread.is_alive() and not watcher.stop_event.is_set()]
        if self.health.tick(now, dead):
            self.scheduler.trigger("outbox")       # an alert goes out now, not at the next tick

    def _imap_taken(self, taken: list[Taken]) -> None:
        """A watcher took messages in: counted, and their acknowledgements go out now."""
        for item in taken:
            self.health.metrics.taken("imap", item.outcome)
        self.scheduler.trigger("outbox")

    def _smtp_taken(self, outcome: Outcome) -> None:
        self.health.metrics.taken("smtp", outcome)
        self.scheduler.trigger("outbox")

    def _relay(self) -> Relay:
        relay = Relay.for_settings(self.app.settings.smtp_out)
        relay.observer = self.health.relay
        return relay

    # ------------------------------------------------------------ life cycle
    def run(self) -> int:
        try:
            self.start()
            self.notifier.ready(self._status())
            while not self.stop_requested:
                if self.reload_requested:
                    self.reload_requested = False
                    self.notifier.reloading()
                    self.reload()
                    self.notifier.ready(self._status())
                self.notifier.watchdog()
                delay = self.scheduler.run_pending()
                if not self.stop_requested:
                    self.scheduler.wait(min(delay, TICK))
        finally:
            self.shutdown()
        return 0

    def start(self) -> None:
        settings = self.app.settings
        self.app.config.build_kb()
        self.recover(self.app.clock.now())
        self.listener = Listener(self.current, after=self._smtp_taken)
        self.listener.start()
        self.health.start(settings)
        self.health.listener(None)
        self._sync_watchers()
        self._schedule()
        warn_about(self.app.config)
        log.warning("mailtriage daemon running: pid %d, database %s, %d IMAP mailbox(es), config %s",
                    os.getpid(), _safe_url(settings.database), len(self.watchers),
                    self.app.config.path or "embedded defaults")

    def recover(self, now: datetime) -> None:
        """Finish what a stopped or killed daemon left half-way, before any source
        starts: raw messages stored but not processed, outbox rows mid-send.
        Each retry is counted first, so a message that kills the daemon does
        not do so at every start for ever."""
        if self.lock is not None:          # SQLite, and we hold the lock: nobody else is working
            while len(pipeline.retry_quarantined(self.app, now, stale_after=timedelta(0),
                                                 limit=RECOVER_BATCH)) == RECOVER_BATCH:
                pass
            reclaimed = outbox.reclaim(self.app.store.sessions, now)
            if reclaimed:
                log.warning("outbox: %d message(s) were being sent when the last daemon stopped; "
                            "sending them again", reclaimed)
        else:                               # PostgreSQL: other daemons may be mid-way right now
            pipeline.retry_quarantined(self.app, now)

    def _schedule(self) -> None:
        """(Re)build the job table; a SIGHUP also brings back a job given up after crashes."""
        wanted = {"outbox", "housekeeping", "health"} | {f"imap-poll:{name}" for name in self.watchers}
        self.scheduler.add("outbox", OUTBOX_EVERY, self.flush_outbox)
        self.scheduler.add("health", HEALTH_EVERY, self.health_check)
        self.scheduler.add("housekeeping", HOUSEKEEPING_EVERY, self.housekeeping, delay=HOUSEKEEPING_EVERY)
        for name, (mailbox, watcher, _thread) in self.watchers.items():
            assert mailbox.imap is not None
            interval = mailbox.imap.poll_interval.total_seconds()
            self.scheduler.add(f"imap-poll:{name}", interval, _waker(watcher), delay=interval)
        if sla_module() is not None:
            wanted.add("sla")
            self.scheduler.add("sla", SLA_EVERY, self.sla_sweep)
        else:
            log.info("SLA sweep: %s is not installed; not scheduled", SLA_MODULE)
        if self.app.settings.digest is not None:     # after the sweep: a start at 08:00 counts the night's breaches
            wanted.add("digest")
            self.scheduler.add("digest", DIGEST_EVERY, self.send_digest)
        for name in self.scheduler.names():
            if name not in wanted:
                self.scheduler.remove(name)

    def _sync_watchers(self) -> None:
        """One watcher thread per mailbox with `imap:`; restart those whose settings
        changed, and those given up after crashing."""
        wanted = {m.name: m for m in self.app.settings.mailboxes if m.imap is not None}
        for name, (mailbox, watcher, thread) in list(self.watchers.items()):
            if wanted.get(name) != mailbox or not thread.is_alive():
                watcher.stop()
                thread.join(STOP_WITHIN)
                del self.watchers[name]
                log.info("imap %s: watcher stopped (mailbox changed or removed, or given up)", name)
        for name, mailbox in wanted.items():
            if name not in self.watchers:
                watcher = ImapWatcher(mailbox, self.current, after=self._imap_taken,
                                      observer=self.health.mailbox(name))
                thread = threading.Thread(target=supervise, name=f"imap-{name}", daemon=True,
                                          args=(f"imap watcher {name}", watcher.serve, watcher.stop_event))
                thread.start()
                self.watchers[name] = (mailbox, watcher, thread)

    def reload(self) -> None:
        """SIGHUP: swap in the new config only when all of it validates."""
        path = self.app.config.path
        try:
            config = load_config(path)
            check_passwords(config.settings)
            config.build_kb()               # before the swap: the running index serves until the new one is ready
        except ConfigError as exc:
            log.error("SIGHUP: %s does not validate; keeping the running configuration:\n%s",
                      path or "embedded defaults", exc)
            return
        except OSError as exc:
            log.error("SIGHUP: cannot read %s (%s); keeping the running configuration", path, exc)
            return
        old = self.app.settings
        if config.settings.database != old.database:
            log.error("SIGHUP: the database changed; that needs a restart. Keeping the running configuration")
            return
        self.app.config = config
        if self.listener is None or self.listener.settings != config.settings.smtp_in:
            self._restart_listener()          # also retries a change an earlier SIGHUP could not make
        if config.settings.smtp_out != old.smtp_out:
            self.relay = self._relay()                                  # a new relay or password: try it now
        self.health.reload(config.settings)
        self._sync_watchers()
        self._schedule()
        warn_about(config)
        log.warning("SIGHUP: configuration reloaded from %s", path or "embedded defaults")

    def _restart_listener(self) -> None:
        """The new `smtp_in` replaces the running listener only once it listens.
        A new address that is busy leaves the old listener serving; on the same
        address the old one must let go first, and comes back if the new one
        cannot start. Either way the next SIGHUP tries again (reload compares
        with what runs, not with the file read last time)."""
        old, wanted = self.listener, self.app.settings.smtp_in
        same_address = old is not None and (old.settings.host, old.settings.port) == (wanted.host, wanted.port)
        if old is not None and same_address:
            old.stop()
        try:
            self.listener = _started(Listener(self.current, after=self._smtp_taken))
        except MailtriageError as exc:
            self.listener = old if not same_address else self._restarted(old)
            where = (f"still listening on {old.settings.host}:{old.settings.port}"
                     if self.listener is not None and old is not None else "NOT LISTENING for SMTP")
            log.error("SIGHUP: %s; %s. The next SIGHUP tries again", exc, where)
            self.health.listener(None if self.listener is not None else str(exc))
            return
        self.health.listener(None)
        if old is not None and not same_address:
            old.stop()

    def _restarted(self, old: Listener | None) -> Listener | None:
        """The listener as it was, after the new settings failed on its address."""
        if old is None:
            return None
        try:
            return _started(Listener(self.current, after=self._smtp_taken, settings=old.settings))
        except MailtriageError:
            return None

    def request_stop(self) -> None:
        self.stop_requested = True

    def request_reload(self) -> None:
        self.reload_requested = True

    def _status(self) -> str:
        """systemd's STATUS= line (`systemctl status` shows it)."""
        smtp = self.listener.settings if self.listener is not None else None
        where = f"SMTP on {smtp.host}:{smtp.port}" if smtp is not None else "no SMTP listener"
        return f"running: {where}, {len(self.watchers)} IMAP mailbox(es)"

    def shutdown(self) -> None:
        started = time.monotonic()
        self.notifier.stopping()
        for _mailbox, watcher, _thread in self.watchers.values():
            watcher.stop()
        if self.listener is not None:
            self.listener.stop()
        self.health.stop()
        for _mailbox, _watcher, thread in self.watchers.values():
            thread.join(max(0.1, STOP_WITHIN - (time.monotonic() - started)))
        self.app.store.close()
        self.release()
        self.notifier.close()
        log.warning("mailtriage daemon stopped (%.1f s)", time.monotonic() - started)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def _started(listener: Listener) -> Listener:
    listener.start()
    return listener


def sla_module() -> ModuleType | None:
    """The SLA sweep, when that module can be imported (the daemon runs without it)."""
    try:
        return importlib.import_module(SLA_MODULE)
    except ImportError as exc:
        if getattr(exc, "name", None) != SLA_MODULE:
            log.error("SLA sweep: %s cannot be imported: %s", SLA_MODULE, exc)
        return None


def check_passwords(settings: Settings) -> None:
    """Every IMAP password, OAuth2 token file and client secret, the board's
    users file, and the relay's password when it needs one, must be there before the daemon
    starts (or a reload is accepted): a missing one is a config error, not an
    outage to retry (nor a 530 for every mail)."""
    problems: list[Problem] = oauth2_problems(settings) + users.problems(settings)
    try:
        smtp_password(settings.smtp_out)
    except ConfigError as exc:
        problems += exc.problems
    for mailbox in settings.mailboxes:
        if mailbox.imap is None or mailbox.imap.auth == "oauth2":
            continue
        try:
            imap_password(mailbox.imap)
        except ConfigError as exc:
            problems += [Problem(p.file, p.line, f"mailbox {mailbox.name}: {p.message}") for p in exc.problems]
        except OSError as exc:
            problems.append(Problem(str(mailbox.imap.password_file), 0,
                                    f"mailbox {mailbox.name}: cannot read the IMAP password: {exc.strerror}"))
    if problems:
        raise ConfigError(problems)


def warn_about(config: Config) -> None:
    """What works but loses notices without a word (an empty tier): loudly, at every start and reload."""
    for warning in config.warnings:
        log.warning("config: %s", warning)


def _waker(watcher: ImapWatcher):  # type: ignore[no-untyped-def]
    def poll_tick(_now: datetime) -> None:
        watcher.wake()
    return poll_tick


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def run_daemon(config: Config, clock: Clock) -> int:
    daemon = Daemon(config, clock)
    signal.signal(signal.SIGTERM, lambda *_: daemon.request_stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: daemon.request_reload())
    return daemon.run()

