"""store.turns: the daemon's SQLite writers take turns in the order they
asked, so a thread that writes batch after batch (an IMAP burst) cannot
starve another (the sender committing each relay's answer)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest

from mailtriage.store.turns import Turns


def _asks(turns: Turns, name: str, order: list[str]) -> threading.Thread:
    def run() -> None:
        with turns.turn():
            order.append(name)
    thread = threading.Thread(target=run, daemon=True)         # a broken Turns must not hang the run
    thread.start()
    return thread


def _held(turns: Turns, then: Callable[[], None] = lambda: None) -> tuple[threading.Thread, threading.Event]:
    """A thread that holds the turn until the returned Event is set, then runs `then`."""
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with turns.turn():
            holding.set()
            release.wait(10)
        then()
    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert holding.wait(10)
    return thread, release


def _wait_until_queued(turns: Turns, count: int) -> None:
    """Until `count` threads hold or wait for the turn (nothing signals a new waiter: polled)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with turns._changed:
            if turns._next - turns._serving >= count:
                return
        time.sleep(0.001)
    raise AssertionError(f"fewer than {count} threads asked for the turn")


def test_turns_go_in_the_order_asked_even_to_a_holder_that_asks_again():
    turns, order = Turns(), []

    def again() -> None:
        with turns.turn():              # at once after its commit, as a watcher in a burst
            order.append("first again")
    first, release = _held(turns, then=again)
    second = _asks(turns, "second", order)
    _wait_until_queued(turns, 2)
    third = _asks(turns, "third", order)
    _wait_until_queued(turns, 3)
    release.set()
    for thread in (first, second, third):
        thread.join(10)
    assert order == ["second", "third", "first again"]


def test_the_holder_may_take_its_turn_again_without_waiting_for_itself():
    turns, order = Turns(), []
    done = threading.Event()

    def nested() -> None:
        with turns.turn():
            with turns.turn():          # a batch falling back to one message at a time
                order.append("inner")
            order.append("outer")
        done.set()
    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    assert done.wait(10), "the holder waited for itself"
    thread.join(10)
    _asks(turns, "next", order).join(10)     # the turn was handed on, once
    assert order == ["inner", "outer", "next"]
    assert (turns._next, turns._serving) == (2, 2)


def test_a_waiter_interrupted_while_waiting_does_not_block_those_after_it():
    """A signal's exception in a waiting thread (the main thread: the sender)
    gives its place up; the turn goes on past it instead of waiting for it forever."""
    turns, order = Turns(), []
    held, release = _held(turns)

    def interrupt(signum, frame):  # type: ignore[no-untyped-def]
        raise TimeoutError("interrupted while waiting for the turn")
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(TimeoutError):
            with turns.turn():
                order.append("never")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    later = _asks(turns, "later", order)
    _wait_until_queued(turns, 3)            # the holder, the number given up, the later one
    release.set()
    held.join(10)
    later.join(10)
    assert order == ["later"]
