"""Independent readings of SQLite brains for the tests: the test's own SQL, not rollbot's."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path


def open_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def tables(connection: sqlite3.Connection, schema: str = "main") -> list[str]:
    rows = connection.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    )
    return sorted(row[0] for row in rows)


def digests(path: Path) -> dict[str, tuple[int, str]]:
    """Per table: row count and a checksum of every row in rowid order, plus the schema version."""
    assert path.is_file(), f"{path} is missing"
    with closing(open_readonly(path)) as brain:
        result: dict[str, tuple[int, str]] = {}
        for table in tables(brain):
            rows = brain.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid').fetchall()
            result[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        result["#user_version"] = (brain.execute("PRAGMA user_version").fetchone()[0], "")
    return result


def rows_missing_from(live: Path, snapshot: Path) -> dict[str, int]:
    """Per table of `live`: rows whose rowid `snapshot` does not have (a table it lacks counts whole)."""
    with closing(open_readonly(live)) as brain:
        brain.execute("ATTACH DATABASE ? AS snap", (f"file:{snapshot}?mode=ro",))
        in_snapshot = set(tables(brain, "snap"))
        counts = {}
        for table in tables(brain):
            if table in in_snapshot:
                query = f'SELECT count(*) FROM main."{table}" m WHERE m.rowid NOT IN (SELECT rowid FROM snap."{table}")'
            else:
                query = f'SELECT count(*) FROM main."{table}"'
            counts[table] = brain.execute(query).fetchone()[0]
    return counts
