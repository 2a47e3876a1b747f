"""The board's users: `http.users_file`, one `NAME:HASH` a line.

HASH is an Argon2id hash in the PHC string format argon2-cffi writes
(`$argon2id$v=19$m=65536,t=3,p=4$SALT$HASH`, RFC 9106's second recommended
parameters): it names its own parameters, so old lines keep verifying when
the defaults change. Blank lines and `#` comments are allowed. Like an
OAuth2 token file, the file must be readable by its owner only (a hash is
an offline-guessing target); anything wrong is a ConfigError at
`FILE:LINE: what is wrong`. `mailtriage users add NAME` writes it
(atomically, mode 0600); the board reads it at each login, so a user added
or removed counts without a restart.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailtriage.config.values import Settings
from mailtriage.errors import ConfigError, Problem, UsageError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
MIN_PASSWORD = 8
# Verified against when the name is unknown, so that an unknown name costs
# the same time as a wrong password (nobody knows its password: random bytes).
_DUMMY = "$argon2id$v=19$m=65536,t=3,p=4$4Hd0e7N1mYR9ofk3CU7q7g$1s+r0ggTW2dfyD5b8iNPh6mYS7Syi8fLOL875jJClcY"


def _hasher() -> PasswordHasher:
    """argon2-cffi's defaults: Argon2id, 64 MiB, 3 passes, 4 lanes. Verifying
    reads the parameters from the hash, so any Argon2 hash in the file verifies."""
    return PasswordHasher()


@dataclass(frozen=True)
class Users:
    path: Path
    hashes: Mapping[str, str]

    def verify(self, name: str, password: str) -> bool:
        """The password is this user's. The same work whether the name exists
        or not; argon2 compares the digests in constant time."""
        stored = self.hashes.get(name)
        try:
            matched = _hasher().verify(stored or _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return False
        return matched and stored is not None


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    return (hasher or _hasher()).hash(password)


def users_path(settings: Settings) -> Path | None:
    """`http.users_file`, relative to the config's folder; None: the board is open."""
    if settings.http is None or not settings.http.users_file:
        return None
    return settings.path(settings.http.users_file)


def read(path: Path) -> Users:
    """The users file, or a ConfigError naming what is wrong (and where)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(Problem(str(path), 0, "no such file (`mailtriage users add NAME` writes it)")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(Problem(str(path), 0, f"cannot be read: {getattr(exc, 'strerror', None) or exc}")) \
            from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(Problem(str(path), 0, f"mode {stat.S_IMODE(mode):04o}: password hashes must be "
                                                f"readable by their owner only (chmod 600)"))
    return parse(text, path)


def parse(text: str, path: Path) -> Users:
    hashes: dict[str, str] = {}
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, hashed = line.partition(":")
        if not colon:
            problems.append(Problem(str(path), number, "expected NAME:HASH (`mailtriage users add NAME`)"))
        elif not NAME.fullmatch(name):
            problems.append(Problem(str(path), number, f"{name!r} is not a user name (letters, digits, . _ @ + -)"))
        elif not hashed.startswith("$argon2"):
            problems.append(Problem(str(path), number, f"user {name}: not an Argon2 hash (a plain password?)"))
        elif name in hashes:
            problems.append(Problem(str(path), number, f"user {name} is listed twice"))
        else:
            hashes[name] = hashed
    if problems:
        raise ConfigError(problems)
    return Users(path, MappingProxyType(hashes))


def problems(settings: Settings) -> list[Problem]:
    """For `config check`: the users file's problems (none when there is no users file)."""
    path = users_path(settings)
    if path is None:
        return []
    try:
        read(path)
    except ConfigError as exc:
        return exc.problems
    return []


def add(path: Path, name: str, password: str, *, force: bool = False, hasher: PasswordHasher | None = None) -> bool:
    """Add NAME (or, with `force`, replace its password); True when it was replaced.
    `hasher`: other Argon2 parameters than the defaults (a slow machine, or tests)."""
    if not NAME.fullmatch(name):
        raise UsageError(f"{name!r} is not a user name (letters, digits, . _ @ + -; up to 64)")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password must have at least {MIN_PASSWORD} characters")
    lines = _lines(path)
    line = f"{name}:{hash_password(password, hasher)}"
    at = [i for i, old in enumerate(lines) if old.partition(":")[0].strip() == name]
    if at and not force:
        raise UsageError(f"user {name} exists in {path} (--force replaces the password)")
    if at:
        lines[at[0]] = line
    else:
        lines.append(line)
    _write(path, lines)
    return bool(at)


def remove(path: Path, name: str) -> None:
    lines = _lines(path)
    kept = [line for line in lines if line.partition(":")[0].strip() != name]
    if len(kept) == len(lines):
        raise UsageError(f"no user {name} in {path}")
    _write(path, kept)


def _lines(path: Path) -> list[str]:
    """The file's lines, after checking all of it (a broken file is not rewritten)."""
    if not path.exists():
        return []
    read(path)
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> None:
    """Atomically, mode 0600 from the first byte: a temporary file beside it, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)   # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
