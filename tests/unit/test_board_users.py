"""The board's users file (mailtriage/web/users.py): Argon2id hashes, mode
0600 like an OAuth2 token file, and every bad line at FILE:LINE."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from mailtriage.errors import ConfigError, UsageError
from mailtriage.web import users

PASSWORD = "correct horse battery"
# Cheap parameters for the file's logic (the default costs about a second on a
# busy CI machine); one test below checks the real defaults.
QUICK = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def add(path: Path, name: str, password: str, *, force: bool = False) -> bool:
    return users.add(path, name, password, force=force, hasher=QUICK)


def test_a_user_added_logs_in_with_that_password_only(tmp_path: Path) -> None:
    path = tmp_path / "users"
    assert add(path, "lead", PASSWORD) is False
    known = users.read(path)
    assert known.verify("lead", PASSWORD)
    assert not known.verify("lead", PASSWORD + "!")
    assert not known.verify("nobody", PASSWORD)          # an unknown name: refused the same way
    assert not known.verify("lead", "")


def test_the_file_holds_a_salted_argon2id_hash_never_the_password(tmp_path: Path) -> None:
    path = tmp_path / "users"
    users.add(path, "lead", PASSWORD)                   # the real defaults: RFC 9106's second profile
    add(path, "second", PASSWORD)
    text = path.read_text()
    assert PASSWORD not in text
    first, second = (line.partition(":")[2] for line in text.splitlines())
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert second.startswith("$argon2id$")
    assert first.split("$")[4] != second.split("$")[4]  # salted: the same password, two salts
    assert users.read(path).verify("lead", PASSWORD)


def test_the_file_is_written_owner_only_and_a_readable_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users"
    add(path, "lead", PASSWORD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(ConfigError) as refused:
        users.read(path)
    assert str(refused.value) == f"{path}: mode 0644: password hashes must be readable by their owner only (chmod 600)"
    with pytest.raises(ConfigError):                     # nor is a readable file rewritten
        add(path, "other", PASSWORD)


def test_each_bad_line_is_reported_at_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "users"
    good = users.hash_password(PASSWORD, QUICK)
    path.write_text(f"# the board's users\n\nlead:{good}\nno colon here\nbad name!:{good}\n"
                    f"plain:secret\nlead:{good}\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as bad:
        users.read(path)
    assert [str(p) for p in bad.value.problems] == [
        f"{path}:4: expected NAME:HASH (`mailtriage users add NAME`)",
        f"{path}:5: 'bad name!' is not a user name (letters, digits, . _ @ + -)",
        f"{path}:6: user plain: not an Argon2 hash (a plain password?)",
        f"{path}:7: user lead is listed twice",
    ]


def test_a_missing_file_says_which_command_writes_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"users: no such file \(`mailtriage users add NAME` writes it\)"):
        users.read(tmp_path / "users")


def test_adding_an_existing_user_needs_force_and_then_changes_the_password(tmp_path: Path) -> None:
    path = tmp_path / "users"
    add(path, "lead", PASSWORD)
    with pytest.raises(UsageError, match="user lead exists"):
        add(path, "lead", "another password")
    assert users.read(path).verify("lead", PASSWORD)
    assert add(path, "lead", "another password", force=True) is True
    known = users.read(path)
    assert list(known.hashes) == ["lead"]
    assert known.verify("lead", "another password") and not known.verify("lead", PASSWORD)


def test_remove_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "users"
    add(path, "lead", PASSWORD)
    add(path, "temp", PASSWORD)
    users.remove(path, "temp")
    assert list(users.read(path).hashes) == ["lead"]
    with pytest.raises(UsageError, match="no user temp"):
        users.remove(path, "temp")
    with pytest.raises(UsageError, match="at least 8 characters"):
        add(path, "short", "1234567")
    with pytest.raises(UsageError, match="not a user name"):
        add(path, "two words", PASSWORD)
