"""Writing a token_file: atomically, mode 0600, one writer at a time.

    lock (<token_file>.lock, flock) ─► temp file in the same folder (0600) ─► fsync ─► rename ─► fsync folder

A crash at any point leaves the old file or the new one, never an empty or
half-written one: the provider may have rotated the refresh token, and the
old one may already be dead. The lock keeps the daemon, `outbox flush` and
`oauth login` from refreshing with the same refresh token at once (a
provider that rotates would refuse the second). Reading the file, and what
is wrong with it, is `config.load.read_token_file`.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def write_token_file(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` as JSON; the file is 0600 from the first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)   # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """The rename itself must reach the disk, or a power cut may undo it."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold `<path>.lock` (flock: the kernel drops it when the process dies)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
