"""SQLite: the daemon's writers take turns, in the order they asked.

SQLite lets one connection write at a time; one that finds the database
locked sleeps and asks again (busy_timeout), in steps of up to 100 ms. An
IMAP watcher that stores batch after batch takes the lock again within a
millisecond of its commit, so the sender, asking between its sleeps, hardly
ever got it: in a burst of 1,000 messages (bench/daemon.py) 35
acknowledgements went out while the messages were stored, the rest after,
and a burst longer than busy_timeout would have failed the sender with
"database is locked". With turns, the sender's short transaction (one
claim, or one relay's answer) goes between two of the watcher's batches.

`writing(session)` around a write transaction: it waits for this process's
earlier writers on the same database, then holds the turn until the
transaction ends. A thread may take its turn again while it holds it (a
batch that falls back to one message at a time). PostgreSQL has row locks:
there it does nothing. Other processes (a `mailtriage` command) still meet
busy_timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.orm import Session


class Turns:
    """A lock handed out first come, first served (threading.Lock is not:
    the thread that releases it can take it again before a waiter wakes)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next = 0                  # the number the next thread to ask gets
        self._serving = 0               # the number whose turn it is
        self._gave_up: set[int] = set() # numbers whose thread stopped waiting (an exception)
        self._holder: int | None = None
        self._depth = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._changed:
            if self._holder == me:      # taken again by the thread that holds it
                self._depth += 1
            else:
                number, self._next = self._next, self._next + 1
                try:
                    self._changed.wait_for(lambda: self._serving == number)
                except BaseException:   # interrupted while waiting: its number must not block the rest
                    if self._serving == number:
                        self._pass_on()
                    else:
                        self._gave_up.add(number)
                    raise
                self._holder, self._depth = me, 1
        try:
            yield
        finally:
            with self._changed:
                self._depth -= 1
                if self._depth == 0:
                    self._holder = None
                    self._pass_on()

    def _pass_on(self) -> None:
        """The turn to the next number still waiting (the Condition held)."""
        self._serving += 1
        while self._serving in self._gave_up:
            self._gave_up.remove(self._serving)
            self._serving += 1
        self._changed.notify_all()


_TURNS: WeakKeyDictionary[Engine, Turns] = WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


@contextmanager
def writing(session: Session) -> Iterator[None]:
    """Hold this process's turn to write to the session's SQLite database
    (waiting for it first); on PostgreSQL, nothing. Enter it before the
    transaction begins and leave it after the commit."""
    turns = _turns(session)
    if turns is None:
        yield
        return
    with turns.turn():
        yield


def _turns(session: Session) -> Turns | None:
    engine = session.get_bind()
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        return None
    with _TURNS_LOCK:
        turns = _TURNS.get(engine)
        if turns is None:
            turns = _TURNS[engine] = Turns()
    return turns
