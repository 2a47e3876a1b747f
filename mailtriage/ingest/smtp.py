"""The SMTP/LMTP listener (aiosmtpd): what an MTA or a test client talks to.

    RCPT ─► 550 unless we serve the address
    DATA ─► pipeline.group (one commit with the other sessions' messages of the
             moment) ─► 250 │ 451 when anything fails before the commit
             └─► the flow: in that commit when the message came alone, after it under load
                 (a failure there is quarantine or pending, never a bounce)

Our own failures (database down, a bug) answer 451, or 421 while the
listener shuts down, never 5xx: the sending MTA keeps the message and
retries (errors.smtp_reply). 5xx is only for the message's own fault: a
recipient we do not serve (550), over the size limit (552, announced in
EHLO as SIZE and enforced by aiosmtpd). The store work runs in one writer
thread (group commit: the messages of all sessions that arrive while a
commit is in flight share the next one, and one fsync), so the event loop
keeps serving other clients. Like Mailman's
runners/lmtp.py, the reply is given only after the bytes are durable. LMTP
answers once per recipient (RFC 2033). On stop, a message in hand gets its
answer first (up to DRAIN seconds); new ones get 421.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP

from mailtriage.model import Disposition, Outcome
from mailtriage.app import App
from mailtriage.errors import MailtriageError, smtp_reply
from mailtriage.config.values import SmtpIn
from mailtriage.ingest import message_id_of
from mailtriage.pipeline.group import GroupCommit
from mailtriage.mail.tokens import base_address

log = logging.getLogger(__name__)

DRAIN = 5.0             # seconds a stopping listener waits for the messages in hand


class Handler:
    """aiosmtpd hooks. `app_ref` is a callable, so SIGHUP can swap the config
    under a running listener; `after` hears about every message taken in."""

    def __init__(self, app_ref: Callable[[], App], after: Callable[[Outcome], None] | None = None):
        self.app_ref = app_ref
        self.after = after
        self.closing = False          # the listener is stopping: new mail gets 421
        self.in_hand = 0              # messages between DATA and their answer
        self.lock = threading.Lock()
        self.group = GroupCommit(app_ref, self._counted, name="smtp-group-commit")

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if self.closing:
            return smtp_reply(None, closing=True)
        self._given_up(session)               # a MAIL FROM again, without a DATA
        self.group.expect()
        session.mt_on_way = True
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_exception(self, error: Exception) -> str:
        """Any hook that raised: aiosmtpd would answer 500 and the MTA would bounce."""
        log.error("smtp: %s; answered with a temporary failure", error, exc_info=error)
        return smtp_reply(error, closing=self.closing)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        served = self.app_ref().settings.own_addresses
        # support+anything@ is support@'s (RFC 5233 subaddress: reply tokens, sorting suffixes)
        if served and base_address(address.lower()) not in served:
            log.info("smtp %s: refused RCPT <%s>: not an address we serve", _peer(session), address)
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self._given_up(session)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self._given_up(session)
        return "221 Bye"

    def _given_up(self, session: Any) -> None:
        """The transaction MAIL FROM announced ends without a DATA (a refused
        recipient, RSET, QUIT): a lone message after it is processed at once
        again, not deferred for a second (a dropped connection still is)."""
        if getattr(session, "mt_on_way", False):
            session.mt_on_way = False
            self.group.given_up()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        session.mt_on_way = False                   # submit() takes the expectation back
        raw = envelope.original_content or envelope.content
        rcpts = tuple(a.lower() for a in envelope.rcpt_tos)
        if self.closing:
            reply = smtp_reply(None, closing=True)
        else:
            reply = await self._store(raw, rcpts, _peer(session))
        if isinstance(server, LMTP):
            return "\r\n".join(reply for _ in rcpts)      # LMTP: one reply per recipient
        return reply

    async def _store(self, raw: bytes, rcpts: tuple[str, ...], peer: str) -> str:
        """250 once the bytes are committed; 4xx for anything that failed before."""
        with self.lock:
            self.in_hand += 1
        try:
            outcome = await asyncio.wrap_future(self.take(raw, rcpts, peer))
            return f"250 2.0.0 accepted {outcome.ref or ''}".rstrip()
        except Exception as exc:  # noqa: BLE001 - nothing stored: the MTA keeps it and retries
            log.error("smtp %s %s: not stored, answered 4xx: %s", peer, message_id_of(raw), exc,
                      exc_info=not isinstance(exc, MailtriageError))
            return smtp_reply(exc, closing=self.closing)
        finally:
            with self.lock:
                self.in_hand -= 1

    def take(self, raw: bytes, rcpts: tuple[str, ...], peer: str) -> Future[Outcome]:
        """Committed with the other sessions' messages of the same moment, then
        processed (pipeline.group); fails only when nothing was stored."""
        done: Future[Outcome] = Future()
        stored = self.group.submit(raw, f"smtp:{peer}", rcpts)
        stored.add_done_callback(lambda stored: self._taken(stored, done, raw, rcpts, peer))
        return done

    def _taken(self, stored: Future[Outcome], done: Future[Outcome], raw: bytes, rcpts: tuple[str, ...],
               peer: str) -> None:
        exc = stored.exception()
        if exc is not None:
            done.set_exception(exc)
            return
        outcome = stored.result()
        log.info("smtp %s %s → %s: %s", peer, message_id_of(raw), ",".join(rcpts), outcome.line())
        if outcome.disposition is not Disposition.PENDING:      # a pending one is told when processed
            self._counted(outcome)
        done.set_result(outcome)

    def _counted(self, outcome: Outcome) -> None:
        """`after`, once per message with its outcome (a deferred one when it is processed)."""
        if self.after is not None:
            try:
                self.after(outcome)
            except Exception:  # noqa: BLE001 - the message is committed: the 250 stands
                log.exception("smtp: after raw message %s", outcome.raw_id)


class _LmtpController(Controller):
    def factory(self) -> LMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)


class Listener:
    """The listener's life cycle: start (a clear error when the port is taken), stop.
    `settings`: what to listen on, when not the running config's (SIGHUP puts
    the old listener back with them)."""

    def __init__(self, app_ref: Callable[[], App], after: Callable[[Outcome], None] | None = None,
                 settings: SmtpIn | None = None):
        self.settings: SmtpIn = settings or app_ref().settings.smtp_in
        self.controller = make_listener(app_ref, after, self.settings)
        self.handler: Handler = self.controller.handler
        self.running = False

    def start(self) -> None:
        cfg = self.settings
        try:
            _bindable(cfg.host, cfg.port)       # at once: aiosmtpd only says so after its ready_timeout
            self.controller.start()
        except (OSError, RuntimeError, TimeoutError) as exc:
            self.handler.group.close()
            raise MailtriageError(f"cannot listen on {cfg.host}:{cfg.port}: {exc}") from exc
        self.running = True
        log.warning("listening for %s on %s:%s (messages up to %d bytes)",
                    "LMTP" if cfg.lmtp else "SMTP", cfg.host, cfg.port, cfg.max_size)

    def stop(self, drain: float = DRAIN) -> None:
        """New mail gets 421 at once; a message in hand gets its answer (up to
        `drain` seconds) so that the MTA does not send it again."""
        if self.running:
            self.running = False
            self.handler.closing = True
            deadline = time.monotonic() + drain
            while self.handler.in_hand and time.monotonic() < deadline:
                time.sleep(0.02)
            self.controller.stop()
            self.handler.group.close(drain)


def make_listener(app_ref: Callable[[], App], after: Callable[[Outcome], None] | None = None,
                  settings: SmtpIn | None = None) -> Controller:
    settings = settings or app_ref().settings.smtp_in
    kwargs: dict[str, Any] = {"data_size_limit": settings.max_size, "enable_SMTPUTF8": True, "ident": "mailtriage"}
    cls = _LmtpController if settings.lmtp else Controller
    return cls(Handler(app_ref, after), hostname=settings.host, port=settings.port,
               server_hostname=socket.gethostname(), ready_timeout=5.0, **kwargs)


def _bindable(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE …) if nothing could listen on host:port now."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)     # as asyncio's server does
        probe.bind(address)


def _peer(session: Any) -> str:
    return str(session.peer[0]) if session.peer else "?"
