"""systemd's service notifications (sd_notify(3)) from the daemon: READY,
WATCHDOG, RELOADING, STOPPING and a STATUS line.

    Daemon.run: start ─► READY=1 ─► loop: WATCHDOG=1 every WatchdogSec/2 ─► SIGTERM: STOPPING=1
                         SIGHUP: RELOADING=1 … READY=1
                         within a pass: alive() after each job and before each mail of an
                         outbox flush ─► WATCHDOG=1, at most once a second

A pass of the scheduler may be long (an outbox flush of 50 mails, each up to
the relay's 30 s timeout): pinged only between passes, systemd would kill
the daemon mid-flush, and the mails claimed would go out twice.

The protocol is one datagram of newline-separated `VAR=VALUE` lines to the
AF_UNIX socket named in `$NOTIFY_SOCKET`; a name that starts with `@` is in
Linux's abstract namespace (the `@` stands for a leading NUL byte).
`$WATCHDOG_USEC` is the unit's WatchdogSec; `$WATCHDOG_PID`, when set, says
which process it is meant for. Without `NOTIFY_SOCKET` (not started by
systemd, or not Type=notify) every call does nothing.

These few lines are ours rather than a library's (README.md, "Running as a
service", says why): `sdnotify` has had no release since 2017 and swallows
every error; `systemd-python` and `cysystemd` are compiled bindings of
libsystemd (the first is built from source against its headers) for what is
one `sendto()`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Mapping

log = logging.getLogger(__name__)

ALIVE_GAP = 1.0             # seconds: alive() sends at most this often (one sendto(), but not per row)


class Notifier:
    """Sends notifications to systemd when it asked for them; thread-unsafe
    (the daemon's main thread is its only user)."""

    def __init__(self, environ: Mapping[str, str] | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic):
        environ = os.environ if environ is None else environ
        self.address = _address(environ.get("NOTIFY_SOCKET", ""))
        self.watchdog_every = _watchdog_every(environ)     # seconds between WATCHDOG=1; None: no watchdog
        self.monotonic = monotonic
        self._socket: socket.socket | None = None
        self._last_ping: float | None = None
        self._failing = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")
        self.watchdog(force=True)

    def reloading(self) -> None:
        # MONOTONIC_USEC: what Type=notify-reload (systemd 253) wants beside RELOADING=1.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading the configuration")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def watchdog(self, *, force: bool = False, gap: float | None = None) -> None:
        """WATCHDOG=1 when half the watchdog interval (or `gap`, if shorter) has
        passed since the last one."""
        if self.watchdog_every is None:
            return
        now = self.monotonic()
        gap = self.watchdog_every if gap is None else min(gap, self.watchdog_every)
        if force or self._last_ping is None or now - self._last_ping >= gap:
            self._last_ping = now
            self.send("WATCHDOG=1")

    def alive(self) -> None:
        """From inside a long pass (after a job, before a mail): WATCHDOG=1 at
        most once per ALIVE_GAP, so that the gap systemd sees is the longest
        single step, not the whole pass."""
        self.watchdog(gap=ALIVE_GAP)

    def send(self, *lines: str) -> bool:
        """One datagram; a failure is logged once (until a send works again), never raised."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(lines).encode("utf-8"), self.address)
        except OSError as exc:
            if not self._failing:
                log.warning("sd_notify: cannot send %s to NOTIFY_SOCKET: %s", lines[0].partition("=")[0], exc)
            self._failing = True
            return False
        self._failing = False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _address(name: str) -> str | bytes | None:
    if not name or name[0] not in "/@":
        return None                         # unset, or a vsock address (vsock:…), which we do not speak
    return b"\0" + name[1:].encode() if name[0] == "@" else name


def _watchdog_every(environ: Mapping[str, str]) -> float | None:
    """Half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises; None when the
    watchdog is off or meant for another process."""
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None
