"""Engine construction and migrations. Migrations run on every start; they are idempotent."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000


def connect(url: str) -> Engine:
    """An engine for `url`, migrated to the newest schema.

    SQLite gets WAL (a reader never blocks the runner's writes, e.g. `history` during a run),
    a busy timeout instead of instant "database is locked" errors, and enforced foreign keys.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    migrate(engine)
    return engine


# Alembic keeps its migration context in a module global: one migration per process at a time.
_MIGRATING = threading.Lock()


def migrate(engine: Engine) -> None:
    """Upgrade to the newest schema; safe when several processes start on one fresh file."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATING, _sqlite_file_lock(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """pysqlite does not BEGIN before DDL, so two processes could both create the tables.

    A lock file beside the database serialises migrations between processes on one host,
    which is the only way several processes share a SQLite file.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
