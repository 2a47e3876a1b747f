"""Shared fixtures.

External things the suite needs (the shared mail corpus, Dovecot, PostgreSQL)
are found here. Without them a test skips on a laptop, but under CI=true it
fails: CI must prove what README promises.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import ROOT, Site, make_site, need  # noqa: F401  (need: for tests that import it from here)

pytest_plugins = ["servers", "pg", "postfix", "oauth2_servers"]


def corpus_path() -> Path:
    return Path(os.environ.get("MAILTRIAGE_CORPUS", ROOT.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = corpus_path()
    need((path / "manifest.csv").is_file(), f"mail corpus not found at {path} (set MAILTRIAGE_CORPUS)")
    return path



@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Tests that store tickets run on both databases (None: the site's SQLite file)."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")


@pytest.fixture
def site(tmp_path: Path, database_url: str | None) -> Site:
    return make_site(tmp_path / "site", database=database_url)
