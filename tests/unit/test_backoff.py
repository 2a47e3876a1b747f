"""An outage is logged once when it starts, again when its cause changes, and once at its end."""

from __future__ import annotations

import logging

from mailtriage.backoff import Backoff, Outage


def test_an_outage_is_logged_at_its_start_at_a_change_of_cause_and_at_its_end(caplog):
    clock = [0.0]
    outage = Outage("relay", logging.getLogger("test.outage"), Backoff(1, 8, jitter=0), monotonic=lambda: clock[0])
    caplog.set_level(logging.DEBUG, logger="test.outage")
    delays = []
    for cause in ("connection refused", "connection refused", "authentication failed", "authentication failed"):
        delays.append(outage.failed(ConnectionError(cause), cause))
        clock[0] += 10
    outage.ended()
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert delays == [1, 2, 4, 8]
    assert loud == ["relay: ConnectionError: connection refused; retrying with backoff",
                    "relay: failing differently now (for 20.0 s): ConnectionError: authentication failed",
                    "relay: working again after 40.0 s (4 failed attempts)"]
