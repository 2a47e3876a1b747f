"""The store: one SQLAlchemy engine and session factory, and the schema version.

SQLite (WAL, full fsync on commit) is the embedded default; PostgreSQL is the
way to run several daemons on one database.
"""

from mailtriage.store.db import Store, open_store

__all__ = ["Store", "open_store"]
