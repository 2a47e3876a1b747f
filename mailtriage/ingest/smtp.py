"""The SMTP/LMTP listener (aiosmtpd).

550 for recipients we do not serve; 250 only after the raw message is
committed (pipeline.accept); 451 when the store fails. Processing runs in a
worker thread so the event loop keeps serving other clients.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from mailtriage import pipeline
from mailtriage.app import App
from mailtriage.errors import TemporaryFailure

log = logging.getLogger(__name__)


class Handler:
    def __init__(self, app_ref: Callable[[], App]):
        self.app_ref = app_ref           # a callable, so SIGHUP can swap the App's config

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        served = self.app_ref().settings.own_addresses
        if served and address.lower() not in served:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        rcpts = tuple(a.lower() for a in envelope.rcpt_tos)
        peer = session.peer[0] if session.peer else "?"
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(None, self._process, raw, rcpts, peer)
        except TemporaryFailure as exc:
            return f"451 4.3.0 could not store the message, try again later ({exc})"
        log.info("smtp from %s: %s", peer, outcome.line())
        return f"250 2.0.0 accepted {outcome.ref or ''}".rstrip()

    def _process(self, raw: bytes, rcpts: tuple[str, ...], peer: str) -> pipeline.Outcome:
        app = self.app_ref()
        return pipeline.process(app, raw, app.clock.now(), source=f"smtp:{peer}", envelope_rcpts=rcpts)


class _LmtpController(Controller):
    def factory(self) -> LMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)


def make_listener(app_ref: Callable[[], App]) -> Controller:
    settings = app_ref().settings.smtp_in
    kwargs = {"data_size_limit": settings.max_size, "enable_SMTPUTF8": True}
    cls = _LmtpController if settings.lmtp else Controller
    return cls(Handler(app_ref), hostname=settings.host, port=settings.port, server_kwargs=kwargs)
