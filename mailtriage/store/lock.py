"""One daemon per SQLite database.

SQLite has no row locks to share work between daemons, so a second daemon
on the same file is refused: the first holds an exclusive flock(2) on
`<database>.lock` for its whole life. The kernel drops the lock when the
process dies, even by SIGKILL, so a crash never leaves a stale lock behind.
PostgreSQL needs no such lock (daemons share work through row locks).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from mailtriage.errors import AlreadyRunning


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and :memory:."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


class DaemonLock:
    """Held while the daemon runs; `acquire()` raises AlreadyRunning for a second one."""

    def __init__(self, database: Path):
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(
                f"another mailtriage daemon (pid {holder}) is already running on {self.database} "
                f"(lock {self.path}); with SQLite only one daemon may run per database "
                "(use PostgreSQL to run several)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_for(url: str) -> DaemonLock | None:
    """The lock a daemon on this database must hold, or None (not SQLite)."""
    path = sqlite_file(url)
    return DaemonLock(path) if path is not None else None
