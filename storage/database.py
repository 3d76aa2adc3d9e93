"""Engine construction and migrations. Migrations run on every start; they are idempotent.

SQLite (a file) is the default, for one bot. PostgreSQL (psycopg 3) is the database several
replicas share: `DATABASE_URL=postgresql+psycopg://user:password@host/db`, or `postgresql://…`,
which means the same here.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.engine import URL, make_url

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000
# The key of the PostgreSQL advisory lock that serialises migrations: "rollbot" in ASCII.
MIGRATION_LOCK_KEY = 0x726F6C6C626F74


def connect(url: str) -> Engine:
    """An engine for `url`, migrated to the newest schema.

    SQLite gets WAL (a reader never blocks the runner's writes, e.g. `history` during a run),
    a busy timeout instead of instant "database is locked" errors, and enforced foreign keys.
    PostgreSQL connections are checked before use, so a server restart or a dropped idle
    connection costs a reconnect, not a failed step.
    """
    parsed = _with_driver(make_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    postgres = parsed.get_backend_name() == "postgresql"
    engine = create_engine(parsed, pool_pre_ping=postgres)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    migrate(engine)
    return engine


def _with_driver(url: URL) -> URL:
    """`postgresql://` names no driver; SQLAlchemy 2.0 would then look for psycopg2, which
    rollbot does not install. psycopg 3 is the one it ships with."""
    if url.drivername == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    return url


# Alembic keeps its migration context in a module global: one migration per process at a time.
_MIGRATING = threading.Lock()


def migrate(engine: Engine) -> None:
    """Upgrade to the newest schema; safe when several processes start on one fresh database."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATING, _sqlite_file_lock(engine), engine.begin() as connection:
        _postgres_migration_lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _postgres_migration_lock(connection: Connection) -> None:
    """Replicas started together on a fresh database would all find no `alembic_version` and
    all create the tables; the losers fail on duplicate names. An advisory lock held until the
    migration's transaction ends (PostgreSQL's DDL is transactional) makes them take turns: the
    first creates the schema, the others find it current. It is scoped to this database."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


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


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or INSERT touched: the conditional moves and claims read it to
    know whether they won. `Session.execute` is typed as returning any `Result`; a DML
    statement's is always a `CursorResult`, which has the count."""
    assert isinstance(result, CursorResult)
    return result.rowcount
