"""Shared fixtures.

External things the suite needs (the shared mail corpus, Dovecot, PostgreSQL)
are found here. Without them a test skips on a laptop, but under CI=true it
fails: CI must prove what README promises.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, why: str) -> None:
    """Skip (laptop) or fail (CI) when something the test needs is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {why}")
    pytest.skip(why)


def corpus_path() -> Path:
    return Path(os.environ.get("MAILTRIAGE_CORPUS", ROOT.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = corpus_path()
    need((path / "manifest.csv").is_file(), f"mail corpus not found at {path} (set MAILTRIAGE_CORPUS)")
    return path




from helpers import Site, make_site  # noqa: E402


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path / "site")
