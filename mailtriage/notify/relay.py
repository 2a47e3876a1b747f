"""The outgoing relay's health across outbox runs (notify/outbox.py asks it).

When the relay fails as a relay (send.py's RelayUnavailable: unreachable,
silent, 421, a refused login), the outbox ends its run, and no run tries
the relay again before `not_before`: `smtp_out.retry_first`, doubling up to
`retry_max` per failed run, for as long as the outage lasts (no mail is
given up for it). The outage is logged once when it starts, again when its
cause changes, and once when the relay works again (backoff.Outage), never
a line per mail.

The daemon keeps one Relay while it runs (a new one when SIGHUP changes
`smtp_out`); `mailtriage outbox flush` starts with a fresh one, so an
operator's flush always tries the relay once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from mailtriage.backoff import Backoff, Outage
from mailtriage.config.values import SmtpOut
from mailtriage.errors import RelayUnavailable

log = logging.getLogger(__name__)


class Relay:
    def __init__(self, what: str, backoff: Backoff):
        self._now = 0.0                    # the outage's times are the outbox's `now`, not the wall clock
        self.outage = Outage(what, log, backoff, monotonic=lambda: self._now)
        self.not_before: datetime | None = None
        # The daemon's health board hears of each try: (now, None) worked, (now, exc) failed.
        self.observer: Callable[[datetime, RelayUnavailable | None], None] | None = None

    @classmethod
    def for_settings(cls, smtp_out: SmtpOut) -> Relay:
        what = f"outbox Maildir {smtp_out.maildir}" if smtp_out.maildir else \
            f"outgoing relay {smtp_out.host}:{smtp_out.port}"
        return cls(what, Backoff.fixed(smtp_out.retry_first, smtp_out.retry_max))

    def ready(self, now: datetime) -> bool:
        """May a run try the relay at `now`?"""
        return self.not_before is None or now >= self.not_before

    def failed(self, exc: RelayUnavailable, now: datetime) -> datetime:
        """A run found the relay failing; returns when to try it next."""
        self._now = now.timestamp()
        self.not_before = now + timedelta(seconds=self.outage.failed(exc, exc.cause))
        if self.observer is not None:
            self.observer(now, exc)
        return self.not_before

    def worked(self, now: datetime) -> None:
        """The relay took us in (whatever it then said about the mail)."""
        self._now = now.timestamp()
        self.outage.ended()
        self.not_before = None
        if self.observer is not None:
            self.observer(now, None)
