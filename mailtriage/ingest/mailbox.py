"""Bulk sources: a Maildir, an mbox file, or a folder of .eml files.

Messages are yielded one at a time (an mbox is streamed, never loaded
whole), in a stable order, each with a name for logs and `source`, and when
it was delivered (for history: tickets.history), as far as the mailbox says:
a Maildir file name's time (else the file's), an mbox `From ` line's date,
an .eml file's modification time.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Iterator

from mailtriage.errors import UsageError
from mailtriage.model import Item

_FROM_LINE = re.compile(rb"^From \S+.*\d{4}\s*$|^From \S+\s*$")
_MAILDIR_TIME = re.compile(r"^(\d{9,11})\.")        # "1700000000.M1P2.host": delivered at that second


def detect(path: Path) -> str:
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return "maildir"
        return "folder"
    if path.is_file():
        with open(path, "rb") as handle:
            head = handle.read(5)
        return "mbox" if head == b"From " else "file"
    raise UsageError(f"{path}: no such file or folder")


def count(path: Path) -> int | None:
    """How many messages (for the progress bar); None for an mbox (unknown without a full read)."""
    kind = detect(path)
    if kind == "maildir":
        return sum(1 for sub in ("new", "cur") for _ in _files(path / sub))
    if kind == "folder":
        return sum(1 for _ in _eml_files(path))
    return None if kind == "mbox" else 1


def messages(path: Path) -> Iterator[Item]:
    kind = detect(path)
    if kind == "maildir":
        for sub in ("new", "cur"):
            for file in _files(path / sub):
                yield Item(f"maildir:{file.name}", file.read_bytes(), _maildir_time(file))
    elif kind == "folder":
        for file in _eml_files(path):
            yield Item(f"file:{file.name}", file.read_bytes(), _mtime(file))
    elif kind == "mbox":
        yield from _mbox(path)
    else:
        yield Item(f"file:{path.name}", path.read_bytes(), _mtime(path))


def _maildir_time(file: Path) -> datetime | None:
    match = _MAILDIR_TIME.match(file.name)
    if match is None:
        return _mtime(file)
    return datetime.fromtimestamp(int(match.group(1)), timezone.utc)


def _mtime(file: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(file.stat().st_mtime, timezone.utc)
    except (OSError, OverflowError, ValueError):
        return None


def _from_line_time(line: bytes) -> datetime | None:
    """The date of `From sender Thu Nov 11 12:00:00 2021` (asctime, no zone: UTC)."""
    parts = line.decode("ascii", "replace").split(None, 2)
    if len(parts) < 3:
        return None
    try:
        when = parsedate_to_datetime(parts[2].strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _files(folder: Path) -> Iterator[Path]:
    names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file() and not entry.name.startswith("."))
    return (folder / name for name in names)


def _eml_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith((".eml", ".msg", ".txt", ".mail")) and not name.startswith("."):
                yield Path(root) / name


def _mbox(path: Path) -> Iterator[Item]:
    """Stream an mbox (mboxrd/mboxo): split on `From ` lines, undo `>From` quoting."""
    index = 0
    lines: list[bytes] = []
    delivered: datetime | None = None
    with open(path, "rb") as handle:
        for line in handle:
            if line.startswith(b"From ") and _FROM_LINE.match(line.rstrip(b"\r\n")):
                if lines:
                    index += 1
                    yield Item(f"mbox:{path.name}#{index}", _unquote(lines), delivered)
                lines = []
                delivered = _from_line_time(line.rstrip(b"\r\n"))
                continue
            lines.append(line)
    if lines:
        index += 1
        yield Item(f"mbox:{path.name}#{index}", _unquote(lines), delivered)


def _unquote(lines: list[bytes]) -> bytes:
    out = [line[1:] if re.match(rb"^>+From ", line) else line for line in lines]
    data = b"".join(out)
    return data[:-1] if data.endswith(b"\n\n") else data
