"""A real PostgreSQL for the tests (a pytest plugin).

`postgres_server` (session) starts a private cluster in a temp dir with
Debian's initdb/pg_ctl (as the `postgres` user when run as root), unless
MAILTRIAGE_TEST_PG_URL names one already running. `new_pg_database()`
creates an empty database per test. Without PostgreSQL the tests that need
it skip on a laptop and fail under CI=true.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import need
from servers import free_port, wait_port


@dataclass
class PgServer:
    admin_url: str            # postgresql+psycopg://…/postgres
    proc_dir: Path | None = None
    pg_ctl: str | None = None
    run_as: list[str] | None = None

    def url(self, database: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + database

    def create_database(self, name: str) -> str:
        self._admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        try:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass                          # a leftover test database harms nothing

    def accept_connections(self, name: str, accept: bool) -> None:
        """Make a database refuse every new connection (and drop the open ones), or accept them again:
        an outage as the application sees it, on the real server."""
        self._admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(accept).lower()}')
        if not accept:
            self._admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")

    def _admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(libpq_dsn(self.admin_url), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


def libpq_dsn(url: str) -> str:
    """The SQLAlchemy URL (postgresql+psycopg://…) as psycopg itself takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def _binaries() -> tuple[str, str] | None:
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(f"{folder}/initdb") and os.path.exists(f"{folder}/pg_ctl"):
            return f"{folder}/initdb", f"{folder}/pg_ctl"
    return None


def _start_private() -> PgServer:
    found = _binaries()
    need(found is not None, "PostgreSQL is not installed (apt-get install postgresql)")
    initdb, pg_ctl = found  # type: ignore[misc]
    base = Path(tempfile.mkdtemp(prefix="mt-pg."))
    base.chmod(0o755)
    run_as: list[str] = []
    if os.geteuid() == 0:                     # initdb refuses to run as root
        user = pwd.getpwnam("postgres")
        shutil.chown(base, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = base / "data"
    subprocess.run(run_as + [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
                             "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(run_as + [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"],
                   check=True, capture_output=True)
    wait_port(port)
    return PgServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", base, pg_ctl, run_as)


@pytest.fixture(scope="session")
def postgres_server():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        need(False, "psycopg is not installed (pip install -e '.[postgres]')")
    url = os.environ.get("MAILTRIAGE_TEST_PG_URL")
    server = PgServer(url) if url else _start_private()
    yield server
    if server.proc_dir is not None:
        subprocess.run((server.run_as or []) + [server.pg_ctl, "-D", str(server.proc_dir / "data"),  # type: ignore[list-item]
                                                "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(server.proc_dir, ignore_errors=True)


_counter = itertools.count()


@pytest.fixture
def pg_url(postgres_server):  # type: ignore[no-untyped-def]
    """A fresh, empty PostgreSQL database for one test, dropped after it
    (a private cluster goes away whole; a server named by MAILTRIAGE_TEST_PG_URL stays)."""
    name = f"mt_test_{os.getpid()}_{next(_counter)}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)
