"""The daemon's picture of its components, in memory, shared by its threads.

The IMAP watchers, the outbox job, the SMTP listener and the health job tell
the board what worked and what failed (`succeeded`, `failed`: a dict update
under a lock, no database write), so a burst of mail costs nothing here.
`/healthz` and `/metrics` read it; the health job (monitor.py) writes what
changed to the heartbeat rows and sends the alerts.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime
from typing import Iterable

from mailtriage.health.state import State


class Board:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, State] = {}

    def succeeded(self, name: str, now: datetime) -> None:
        with self._lock:
            self._states[name] = self._states.get(name, State(name)).succeeded(now)

    def failed(self, name: str, error: str, now: datetime) -> None:
        with self._lock:
            self._states[name] = self._states.get(name, State(name)).failed(error, now)

    def put(self, state: State) -> None:
        """A state as the health job left it (alerted), or as a heartbeat row kept it."""
        with self._lock:
            self._states[state.name] = state

    def alerted(self, name: str, alerted_at: datetime | None) -> None:
        """The health job queued the alert (alerted_at) or the recovery (None)."""
        with self._lock:
            state = self._states.get(name, State(name))
            self._states[name] = replace(state, alerted_at=alerted_at)

    def keep(self, names: Iterable[str]) -> None:
        """Only these components (a SIGHUP removed a mailbox); the others start as unknown."""
        wanted = set(names)
        with self._lock:
            self._states = {name: state for name, state in self._states.items() if name in wanted}
            for name in wanted - set(self._states):
                self._states[name] = State(name)

    def get(self, name: str) -> State:
        with self._lock:
            return self._states.get(name, State(name))

    def snapshot(self) -> dict[str, State]:
        with self._lock:
            return dict(sorted(self._states.items()))
