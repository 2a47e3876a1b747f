"""The daemon's Prometheus metrics (prometheus-client), one registry per
daemon (never the library's global one: no module-level state).

Counters move where things happen: `mailtriage_messages_total{source,outcome}`
where a source gets the pipeline's Outcome for a message it took in, and
`mailtriage_sla_breaches_total{severity}` where the SLA sweep announces a
breach. Gauges are read at scrape time by a collector: the outbox from the
database (one indexed count), the mailboxes from the board.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from mailtriage.health import facts
from mailtriage.health.board import Board
from mailtriage.model import Disposition, Outcome
from mailtriage.store import Store

log = logging.getLogger(__name__)

SOURCES = ("imap", "smtp", "pipe", "import")
OUTCOMES = tuple(d.value for d in Disposition if d is not Disposition.PENDING)
SEVERITIES = ("S1", "S2", "S3", "S4")


class Metrics:
    def __init__(self, board: Board, store: Callable[[], Store]):
        self.registry = CollectorRegistry()
        self.messages = Counter("mailtriage_messages", "Messages taken in, by source and outcome",
                                ("source", "outcome"), registry=self.registry)
        self.breaches = Counter("mailtriage_sla_breaches", "SLA targets missed (breach notices), by severity",
                                ("severity",), registry=self.registry)
        for source in ("imap", "smtp"):                 # the daemon's own sources: every series from 0
            for outcome in OUTCOMES:
                self.messages.labels(source, outcome)
        for severity in SEVERITIES:
            self.breaches.labels(severity)
        self.registry.register(_Gauges(board, store))

    def taken(self, source: str, outcome: Outcome | None) -> None:
        """A message a source took in; a pending one counts when it is processed."""
        if outcome is not None and outcome.disposition is not Disposition.PENDING:
            self.messages.labels(source, outcome.disposition.value).inc()

    def breached(self, severities: dict[str, int]) -> None:
        for severity, count in severities.items():
            self.breaches.labels(severity).inc(count)


class _Gauges(Collector):
    """Read at each scrape: what the database and the board say now."""

    def __init__(self, board: Board, store: Callable[[], Store]):
        self.board, self.store = board, store

    def collect(self) -> Iterator[Metric]:
        yield from self._outbox()
        up = GaugeMetricFamily("mailtriage_mailbox_up", "1 when the mailbox's last fetch worked, else 0",
                               labels=("mailbox",))
        last = GaugeMetricFamily("mailtriage_mailbox_last_success_timestamp_seconds",
                                 "When the mailbox's last fetch worked (Unix time)", labels=("mailbox",))
        component = GaugeMetricFamily("mailtriage_component_up", "1 unless the component's last try failed",
                                      labels=("component",))
        for name, state in self.board.snapshot().items():
            component.add_metric((name,), 0.0 if state.ok is False else 1.0)
            if name.startswith("mailbox:"):
                mailbox = name.partition(":")[2]
                up.add_metric((mailbox,), 0.0 if state.ok is False else 1.0)
                if state.last_success_at is not None:
                    last.add_metric((mailbox,), state.last_success_at.timestamp())
        yield from (up, last, component)

    def _outbox(self) -> Iterator[Metric]:
        try:
            with self.store().session() as session:
                outbox = facts.outbox(session)
        except SQLAlchemyError as exc:          # /metrics still answers; the database shows as down
            log.debug("metrics: the outbox cannot be counted: %s", exc)
            return
        yield GaugeMetricFamily("mailtriage_outbox_pending", "Outgoing mail not sent yet", value=outbox.pending)
        yield GaugeMetricFamily("mailtriage_outbox_failed", "Outgoing mail given up (outbox retry)",
                                value=outbox.failed)
