"""What each recipient's reply means for an outbox row (pure: values in, values out).

RFC 5321 answers every recipient on its own: one may get 250, another 451
(try later), a third 550 (never). The sender (send.py) returns a Reply per
recipient; `settle` turns them into each recipient's state, which the outbox
keeps in the row's `deliveries` column:

    {"anna@example.com": {"status": "sent", "reply": "250 2.0.0 Ok", "attempt": 1},
     "bob@example.com":  {"status": "deferred", "reply": "451 4.2.1 busy", "attempt": 1}}

A recipient is still due until it is `sent` or `failed`; the next attempt
goes to those only, so nobody gets a second copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailtriage.model import OutboxStatus

SENT, DEFERRED, FAILED = "sent", "deferred", "failed"

Deliveries = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Reply:
    """The relay's last word about one recipient; `code` None: no SMTP reply
    came (the connection broke), which is temporary."""

    code: int | None
    text: str

    @property
    def accepted(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code is not None and 500 <= self.code < 600

    def __str__(self) -> str:
        return self.text if self.code is None else f"{self.code} {self.text}".strip()


@dataclass(frozen=True)
class Outcome:
    """The row's recipients after one attempt, and who got where in it."""

    deliveries: Deliveries
    sent: list[str]
    deferred: list[str]
    failed: list[str]

    def status(self, recipients: list[str]) -> OutboxStatus:
        """Pending while anyone is due; then failed if anyone was given up, else sent."""
        if still_due(recipients, self.deliveries):
            return OutboxStatus.PENDING
        if any(_state(self.deliveries, address) == FAILED for address in recipients):
            return OutboxStatus.FAILED
        return OutboxStatus.SENT


def settle(before: Deliveries | None, replies: dict[str, Reply], attempt: int, *, last: bool) -> Outcome:
    """2xx: sent. 5xx: failed. Anything else: deferred, or failed on the `last` attempt."""
    after = dict(before or {})
    sent: list[str] = []
    deferred: list[str] = []
    failed: list[str] = []
    for address, reply in replies.items():
        text = str(reply)
        if reply.accepted:
            status, bucket = SENT, sent
        elif reply.permanent:
            status, bucket = FAILED, failed
        elif last:
            status, bucket, text = FAILED, failed, f"gave up after {attempt} attempts: {reply}"
        else:
            status, bucket = DEFERRED, deferred
        after[address] = {"status": status, "reply": text, "attempt": attempt}
        bucket.append(address)
    return Outcome(after, sent, deferred, failed)


def still_due(recipients: list[str], deliveries: Deliveries | None) -> list[str]:
    """The recipients the next attempt goes to."""
    return [address for address in recipients if _state(deliveries, address) not in (SENT, FAILED)]


def forget_failed(deliveries: Deliveries | None) -> Deliveries:
    """`outbox retry`: the recipients it failed for are due again."""
    return {address: entry for address, entry in (deliveries or {}).items() if entry.get("status") != FAILED}


def summary(recipients: list[str], deliveries: Deliveries | None) -> str | None:
    """The replies of everyone who does not have it yet: the row's `last_error`."""
    lines = [f"{address}: {deliveries[address]['reply']}" for address in recipients
             if deliveries and address in deliveries and _state(deliveries, address) != SENT]
    return "; ".join(lines) or None


def _state(deliveries: Deliveries | None, address: str) -> str | None:
    entry = (deliveries or {}).get(address)
    return entry.get("status") if entry else None
