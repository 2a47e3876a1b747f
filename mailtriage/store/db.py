"""Opening the database and keeping its schema current (Alembic)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from mailtriage.errors import SchemaOutdated

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest migration. Kept here so that opening the store needs no Alembic
# (which costs half a second to import); a test checks it against Alembic's head.
SCHEMA_HEAD = "0012"


@dataclass
class Store:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")      # a commit is on disk before we say 250
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> "AlembicConfig":
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def current_revision(engine: Engine) -> str | None:
    if "alembic_version" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(store: Store) -> tuple[str | None, str | None]:
    """Bring the schema to the newest version; returns (before, after)."""
    from alembic import command

    before = current_revision(store.engine)
    config = alembic_config(store.url)
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, current_revision(store.engine)


def connect(url: str) -> Store:
    """Connect without looking at the schema version (for `db upgrade`)."""
    engine = make_engine(url)
    return Store(url, engine, sessionmaker(engine, expire_on_commit=False))


def open_store(url: str, *, auto_create: bool = True) -> Store:
    """Open the database. A brand-new database gets the schema at once; one at
    an older version is refused until `mailtriage db upgrade` has run."""
    store = connect(url)
    engine = store.engine
    current = current_revision(engine)
    head = SCHEMA_HEAD
    if current == head:
        return store
    fresh = current is None and not inspect(engine).get_table_names()
    if fresh and auto_create:
        upgrade(store)
        return store
    raise SchemaOutdated(
        f"database schema is at {current or 'no version'}, this mailtriage needs {head}: "
        "run `mailtriage db upgrade`")
