"""One component's health and its alert, as values (pure: no clock, no I/O).

    ok ──failed──► failing (since) ──`after` passed──► alerted ──succeeded──► ok (a recovery mail)
                      └──succeeded before `after`──► ok (no mail at all)

`alert_due()` is the whole alert policy: one mail when a component has been
failing for `after`, one when it works again after that mail, nothing in
between. Whether the alert went out is part of the state (`alerted_at`) and is
stored in the component's heartbeat row, so a restarted daemon neither sends
it again nor forgets to send the recovery.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

Action = Literal["alert", "recovered"]
MAX_ERROR = 500                 # characters of an error kept (a log line, not a traceback)


@dataclass(frozen=True)
class State:
    name: str                                   # mailbox:support, relay, database, oauth2:support, smtp_in
    ok: bool | None = None                      # None: not tried yet
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    failing_since: datetime | None = None
    alerted_at: datetime | None = None          # this failure's alert mail is queued

    @property
    def status(self) -> str:
        return "unknown" if self.ok is None else "ok" if self.ok else "failing"

    def succeeded(self, now: datetime) -> State:
        return replace(self, ok=True, last_success_at=now, failing_since=None)

    def failed(self, error: str, now: datetime) -> State:
        return replace(self, ok=False, last_error_at=now, last_error=" ".join(error.split())[:MAX_ERROR],
                       failing_since=self.failing_since or now)

    def alert_due(self, now: datetime, after: timedelta) -> Action | None:
        """The mail this state calls for at `now`, if any."""
        if self.ok is False:
            if self.alerted_at is None and self.failing_since is not None and now - self.failing_since >= after:
                return "alert"
            return None
        if self.ok and self.alerted_at is not None:
            return "recovered"
        return None

    def alerted(self, action: Action, now: datetime) -> State:
        """The state once the mail for `action` is queued."""
        return replace(self, alerted_at=now if action == "alert" else None)

    def same_facts(self, other: State) -> bool:
        """Equal but for the times of the latest success and error (their refresh is throttled)."""
        return replace(self, last_success_at=None, last_error_at=None) == \
            replace(other, last_success_at=None, last_error_at=None)

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "last_success": _iso(self.last_success_at),
                "last_error_at": _iso(self.last_error_at), "last_error": self.last_error,
                "failing_since": _iso(self.failing_since), "alerted": self.alerted_at is not None}


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat(timespec="seconds")
