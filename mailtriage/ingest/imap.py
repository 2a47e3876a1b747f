"""IMAP source (IMAPClient): one watcher per mailbox that has `imap:`.

    SELECT folder ─► UID SEARCH last+1:* ─► per batch: UID FETCH BODY.PEEK[] ─► batches.accept_many (one commit)
       ─► \\Seen, or MOVE to processed_folder ─► remember the last UID ─► batches.process_many_stored (one commit)

`run_once(now)` is one pass (tests and the daemon call it); `serve()` is the
daemon's loop around it: IDLE where the server offers it (re-issued every
IDLE_RENEW, well before the 29 minutes after which RFC 2177 lets a server
drop it), otherwise a wait for the scheduler's poll tick (`wake()`). A lost
server means reconnecting with backoff and jitter, logged once per outage.

The folder's UIDVALIDITY and the last UID taken are kept in `imap_state`;
a new UIDVALIDITY means the UIDs mean something else now, so the folder is
read again from the start and duplicate detection drops what we have.
BODY.PEEK[] leaves \\Seen alone: the flag (or the MOVE) is set only after
the raw bytes are committed, so a crash at any point loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from mailtriage import pipeline
from mailtriage.pipeline import batches
from mailtriage.model import Outcome
from mailtriage.app import App
from mailtriage.backoff import Backoff, Outage
from mailtriage.errors import ConfigError, OAuth2Refused, TemporaryFailure
from mailtriage.ingest import message_id_of
from mailtriage.config.load import imap_password
from mailtriage.config.values import ImapSettings, Mailbox
from mailtriage.oauth2 import TokenSource, imap_tokens, xoauth2_login
from mailtriage.store.lock import AdvisoryLock, advisory_lock
from mailtriage.store.schema import ImapState

log = logging.getLogger(__name__)

BATCH = 25                    # messages per UID FETCH
IDLE_RENEW = 10 * 60.0        # re-issue IDLE after this many seconds
IDLE_TICK = 0.5               # idle_check() timeout: how fast a stop or a wake is noticed
TIMEOUT = 30.0                # socket timeout for connect and every command
RECONNECT = Backoff(first=1.0, cap=120.0)
CATCH_UP = 3                  # passes that find nothing though EXISTS said so, before idling anyway
STANDBY = 2.0                 # PostgreSQL: how often a standing-by daemon tries to take the folder over
                              # (one pg_try_advisory_lock: cheap; a dead holder is replaced within seconds)

# What goes wrong with a server or the store rather than with our code:
# reconnect with backoff instead of counting a crash.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, IMAPClientError, TemporaryFailure, ConfigError,
                                                  SQLAlchemyError)


@dataclass(frozen=True)
class Taken:
    """One message taken in from the folder."""

    uid: int
    message_id: str
    outcome: Outcome | None        # None: stored, processing left for later


def connect(settings: ImapSettings, tokens: TokenSource | None = None) -> IMAPClient:
    """Log in: with a password from the environment or a file, or with an
    OAuth2 access token (`auth: oauth2`)."""
    password = imap_password(settings) if tokens is None else None
    client = IMAPClient(settings.host, port=settings.port, ssl=settings.ssl, timeout=TIMEOUT)
    try:
        if tokens is not None:
            xoauth2_login(client, settings.username, tokens)
        else:
            client.login(settings.username, password)
    except BaseException:
        client.shutdown()
        raise
    return client


class ImapWatcher:
    def __init__(self, mailbox: Mailbox, app_ref: Callable[[], App], *,
                 after: Callable[[list[Taken]], None] | None = None,
                 connector: Callable[[ImapSettings, TokenSource | None], IMAPClient] = connect,
                 observer: Callable[[BaseException | None], None] | None = None):
        assert mailbox.imap is not None, f"mailbox {mailbox.name} has no imap settings"
        self.name = mailbox.name
        self.settings: ImapSettings = mailbox.imap
        self.app_ref = app_ref
        self.after = after
        self.connector = connector
        self.observer = observer          # the daemon's health board: None after a pass that worked, else why not
        self.tokens = imap_tokens(mailbox, app_ref().settings.base_dir)
        self.label = f"imap {self.name}/{self.settings.folder}"
        self.client: IMAPClient | None = None
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.announced = False
        self.lease: AdvisoryLock | None = None
        self.standing_by = False
        self.outage = Outage(f"{self.label} ({self.settings.username} at {self.settings.host}:{self.settings.port})",
                             log, RECONNECT)

    # ------------------------------------------------------------ one pass
    def run_once(self, now: datetime | None = None) -> list[Taken]:
        """Take in everything new in the folder; returns what was taken."""
        client = self._connected()
        uidvalidity = int(client.select_folder(self.settings.folder)[b"UIDVALIDITY"])
        state = self._last_uid(uidvalidity)
        if state is None:                               # first look, or a new UIDVALIDITY
            present = client.search(["ALL"])
            state = (0, max(present, default=0))        # what is there now may be history
            self._save_uid(uidvalidity, 0, now or self.app_ref().clock.now(), history_until=state[1])
        last, history_until = state
        uids = sorted(uid for uid in client.search(["UID", f"{last + 1}:*"]) if uid > last)
        taken: list[Taken] = []
        for batch in _chunks(uids, BATCH):
            if self.stop_event.is_set():
                break                                   # the rest is taken at the next start
            done = self._take(client, uidvalidity, batch, now, history_until)
            taken += done
            if self.after is not None and done:
                self.after(done)
        return taken

    def _take(self, client: IMAPClient, uidvalidity: int, uids: list[int],
              now: datetime | None, history_until: int = 0) -> list[Taken]:
        """One UID FETCH, one commit of the raw bytes, one STORE (or MOVE), one
        commit of the batch's processing (pipeline.batches)."""
        app = self.app_ref()
        fetched = client.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE"])
        present = [(uid, raw) for uid in uids if (raw := fetched.get(uid, {}).get(b"BODY[]")) is not None]
        accepted = batches.accept_many(app, [raw for _uid, raw in present], now or app.clock.now(),
                                     f"imap:{self.name}") if present else []
        stored = [(uid, raw, raw_id, seen) for (uid, raw), (raw_id, seen) in zip(present, accepted)]
        if stored:
            self._mark(client, [uid for uid, *_ in stored])
        self._save_uid(uidvalidity, uids[-1], now or app.clock.now())    # committed, or gone from the folder
        history = {uid: when for uid in uids if uid <= history_until
                   and (when := _internal_date(fetched.get(uid, {}))) is not None
                   and when < (now or app.clock.now()) - self.settings.history_age}
        return self._process(app, stored, now, history)

    def _process(self, app: App, stored: list[tuple[int, bytes, int, Outcome | None]],
                 now: datetime | None, history: dict[int, datetime]) -> list[Taken]:
        """`history`: UIDs found at the first look that are older than
        `history_age`, with their INTERNALDATE: taken in as history."""
        todo: dict[int, batches.Stored] = {}              # the same bytes twice in one batch: once
        for uid, raw, raw_id, seen in stored:
            if seen is None and raw_id not in todo:
                todo[raw_id] = batches.Stored(raw_id, uid not in history, history.get(uid), batches.parsed(app, raw))
        outcomes = dict(zip(todo, batches.process_many_stored(app, list(todo.values()), now or app.clock.now())))
        taken = []
        for uid, raw, raw_id, seen in stored:
            message_id = message_id_of(raw)
            outcome = seen or outcomes.pop(raw_id, None)
            if outcome is not None:
                log.info("%s uid %s %s: %s", self.label, uid, message_id, outcome.line())
            taken.append(Taken(uid, message_id, outcome))
        return taken

    def _mark(self, client: IMAPClient, uids: list[int]) -> None:
        """Only after the commit: \\Seen, or out of the folder into processed_folder."""
        target = self.settings.processed_folder
        if not target:
            client.add_flags(uids, [SEEN], silent=True)
        elif client.has_capability("MOVE"):
            client.move(uids, target)
        else:
            client.copy(uids, target)
            client.add_flags(uids, [DELETED], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uids)
            else:
                client.expunge()

    # ------------------------------------------------------------ state
    def _last_uid(self, uidvalidity: int) -> tuple[int, int] | None:
        """The last UID taken in and the first look's highest UID; None when
        the folder must be read from the start."""
        with self.app_ref().store.session() as session:
            state = session.scalar(self._state_query())
            if state is None:
                log.info("%s: first look at this folder, reading all of it", self.label)
                return None
            if state.uidvalidity != uidvalidity:
                log.warning("%s: UIDVALIDITY changed from %s to %s: reading the whole folder again "
                            "(duplicates are recognised)", self.label, state.uidvalidity, uidvalidity)
                return None
            return state.last_uid, state.history_until or 0

    def _save_uid(self, uidvalidity: int, uid: int, now: datetime, *, history_until: int | None = None) -> None:
        with self.app_ref().store.session() as session, session.begin():
            state = session.scalar(self._state_query())
            if state is None:
                state = ImapState(mailbox=self.name, folder=self.settings.folder)
                session.add(state)
            state.uidvalidity, state.last_uid, state.updated_at = uidvalidity, uid, now
            if history_until is not None:
                state.history_until = history_until

    def _state_query(self) -> Any:
        return select(ImapState).where(ImapState.mailbox == self.name, ImapState.folder == self.settings.folder)

    # ------------------------------------------------------------ connection
    def _connected(self) -> IMAPClient:
        if self.client is None:
            client = self.connector(self.settings, self.tokens)
            target = self.settings.processed_folder
            if target and not client.folder_exists(target):
                client.create_folder(target)
            self.client = client
        return self.client

    def close(self) -> None:
        """Log out (politely when the connection still works)."""
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except (OSError, IMAPClientError):
            try:
                client.shutdown()
            except (OSError, IMAPClientError):
                pass

    # ------------------------------------------------------------ the daemon's loop
    def wake(self) -> None:
        """Look at the folder now (the scheduler's poll tick)."""
        self.wake_event.set()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_event.set()

    def serve(self) -> None:
        """Run until stop(): take what is new, wait (IDLE or a poll tick), repeat.
        Server and store trouble means reconnecting with backoff; anything else
        is a crash, which the daemon's supervisor restarts a bounded number of times."""
        self.lease = advisory_lock(self.app_ref().store.engine, f"mailtriage imap {self.name}/{self.settings.folder}")
        try:
            while not self.stop_event.is_set():
                try:
                    self.wake_event.clear()
                    if not self._leased():
                        self.stop_event.wait(STANDBY)
                        continue
                    self.run_once()
                    empty_rounds = 0                # a server that repeats EXISTS must not keep us here
                    while empty_rounds < CATCH_UP and self._more_mail():
                        empty_rounds += 0 if self.run_once() else 1
                    self.outage.ended()
                    self._observed(None)
                    self._wait()
                except OUTAGE_ERRORS as exc:
                    self._drop()
                    self._observed(exc)
                    self.stop_event.wait(self.outage.failed(exc))
                except OAuth2Refused as exc:
                    self._observed(exc)
                    # Retrying cannot help and may lock the account: this watcher ends here;
                    # SIGHUP (after `oauth login`) starts it again. The other mailboxes go on.
                    log.error("%s: logins stopped: %s, then SIGHUP", self.label, exc)
                    return
        finally:
            self.close()
            if self.lease is not None:
                self.lease.release()

    def _observed(self, exc: BaseException | None) -> None:
        if self.observer is not None and not self.stop_event.is_set():
            self.observer(exc)

    def _leased(self) -> bool:
        """PostgreSQL: one daemon at a time watches a folder; the others stand by.

        A daemon that has just taken the folder first finishes the messages a
        dead holder committed but did not process (their UIDs are already
        marked, so the folder will not offer them again): at once, not when
        housekeeping finds them stale minutes later."""
        if self.lease is None:
            return True
        taking = not self.lease.held
        if self.lease.hold():
            if self.standing_by:
                log.warning("%s: taking over the folder", self.label)
            self.standing_by = False
            if taking:
                app = self.app_ref()
                left = pipeline.retry_quarantined(app, app.clock.now(), stale_after=timedelta(0),
                                                  source=f"imap:{self.name}", limit=1000)
                if left:
                    log.warning("%s: finished %d message(s) left pending by the previous holder",
                                self.label, len(left))
            return True
        if not self.standing_by:
            log.warning("%s: another daemon watches this folder; standing by", self.label)
            self.standing_by = True
        self._drop()
        return False

    def _more_mail(self) -> bool:
        """Did mail arrive while we worked? A server announces new mail (EXISTS)
        with the reply to whatever command comes next — a FETCH, a STORE — and
        Dovecot does not repeat it when IDLE starts: idling then would leave that
        mail waiting for the next poll tick. So: a NOOP, and a look at what
        imaplib kept from the other commands (SELECT starts that list afresh, so
        a second EXISTS in it means mail came after the SELECT)."""
        client = self.client
        if client is None or self.stop_event.is_set():
            return False
        responses = client.noop()[1]
        buffered = client._imap.untagged_responses.get("EXISTS", [])   # no public API for these
        return _news(responses) or len(buffered) > 1

    def _wait(self) -> None:
        client = self.client
        if client is not None and self.settings.idle and client.has_capability("IDLE"):
            self._idle(client)
        else:
            # Log out between polls: servers drop idle sessions after 30 minutes,
            # and a dropped session is not worth an outage warning at every poll.
            self._announce(f"polling every {self.settings.poll_interval.total_seconds():g} s")
            self.close()
            self.wake_event.wait()

    def _announce(self, how: str) -> None:
        """Once per connection, say how new mail is noticed."""
        if not self.announced:
            self.announced = True
            log.info("%s: connected; %s", self.label, how)

    def _idle(self, client: IMAPClient) -> None:
        client.idle()
        self._announce("waiting with IDLE")
        started = time.monotonic()
        try:
            while not self.wake_event.is_set() and time.monotonic() - started < IDLE_RENEW:
                tick = time.monotonic()
                responses = client.idle_check(timeout=IDLE_TICK)
                if _news(responses):
                    break
                if not responses and time.monotonic() - tick < IDLE_TICK / 2:
                    break               # readable but nothing to read: the server has gone
        finally:
            client.idle_done()          # raises when the connection is gone: serve() reconnects

    def _drop(self) -> None:
        self.announced = False
        client, self.client = self.client, None
        if client is not None:
            try:
                client.shutdown()
            except (OSError, IMAPClientError):
                pass


def _news(responses: list[Any]) -> bool:
    """EXISTS/RECENT: new mail; BYE: the server is leaving. Keep-alives are not news."""
    for response in responses:
        if len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT"):
            return True
        if response and response[0] == b"BYE":
            return True
    return False


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _internal_date(item: dict) -> datetime | None:
    """A message's INTERNALDATE (when the server received it), with its zone
    (imapclient gives naive local time unless told otherwise)."""
    when = item.get(b"INTERNALDATE")
    if not isinstance(when, datetime):
        return None
    return when.astimezone(timezone.utc) if when.tzinfo is None else when
