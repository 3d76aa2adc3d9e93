"""Facts about SQLite brains: schema version, integrity, checksums, and what a restore loses.

Everything here reads; nothing writes a brain. Live brains are opened read-only (`mode=ro`), so
the Engine keeps running while preflight looks. Snapshots never change once written, so they are
opened `immutable`, which also lets SQLite read a snapshot whose header says WAL without
creating `-wal`/`-shm` files beside it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bot.errors import RollbotError

# integrity_check reads every page and cross-checks every index against its table; quick_check
# skips the cross-checks. bench/brain_restore.py measured, with the file in the page cache:
# 1 GB without secondary indexes 1.06 s vs 1.09 s (the same); with an index per table 1.79 s vs
# 0.92 s (integrity_check ~1.9x slower, ~590 MB/s). Above 512 MB quick_check keeps the check
# under about a second per GB; a cold cache reads at disk speed either way.
QUICK_CHECK_ABOVE_BYTES = 512 * 1024 * 1024
TIME_COLUMN_NAMES = ("created_at", "created", "inserted_at", "occurred_at", "timestamp", "ts", "time", "at", "date")
CHUNK = 4 * 1024 * 1024


class BrainError(RollbotError):
    """A brain or snapshot cannot be read."""


@dataclass(frozen=True)
class TableLoss:
    """Rows of one table in the live brain that the snapshot does not have."""

    table: str
    rows: int
    time_column: str | None = None
    first: str | None = None
    last: str | None = None
    whole_table: bool = False

    def describe(self) -> str:
        span = f" ({self.first} … {self.last})" if self.rows and self.first else ""
        new = " — the table is new since the snapshot" if self.whole_table else ""
        return f"{self.table}: {self.rows} row(s){span}{new}"


@dataclass(frozen=True)
class LossReport:
    tables: tuple[TableLoss, ...]

    @property
    def total_rows(self) -> int:
        return sum(table.rows for table in self.tables)

    def describe(self) -> str:
        lost = [table.describe() for table in self.tables if table.rows]
        return "; ".join(lost) if lost else "no rows would be lost"


def readonly(path: Path, immutable: bool = False) -> sqlite3.Connection:
    """Open a brain without any chance of writing it."""
    flags = "mode=ro&immutable=1" if immutable else "mode=ro"
    try:
        return sqlite3.connect(f"file:{quote(str(path))}?{flags}", uri=True, timeout=10)
    except sqlite3.Error as error:
        raise BrainError(f"{path}: cannot open: {error}") from None


def schema_version(path: Path, query: str | None = None, immutable: bool = False) -> int:
    """`PRAGMA user_version`, or the configured query's single value (e.g. a migrations table)."""
    with closing(readonly(path, immutable)) as brain:
        try:
            row = brain.execute(query or "PRAGMA user_version").fetchone()
        except sqlite3.Error as error:
            raise BrainError(f"{path}: cannot read the schema version: {error}") from None
    if row is None or not isinstance(row[0], int):
        raise BrainError(f"{path}: the schema version query gave {row!r}, not an integer")
    return row[0]


def check_integrity(path: Path, immutable: bool = True) -> tuple[str, str]:
    """Run integrity_check (quick_check for large files); returns (check used, result)."""
    pragma = "quick_check" if path.stat().st_size > QUICK_CHECK_ABOVE_BYTES else "integrity_check"
    try:
        with closing(readonly(path, immutable)) as brain:
            rows = brain.execute(f"PRAGMA {pragma}(5)").fetchall()
    except sqlite3.Error as error:
        return pragma, str(error)
    return pragma, "; ".join(str(row[0]) for row in rows)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def table_names(brain: sqlite3.Connection, schema: str = "main") -> list[str]:
    rows = brain.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [row[0] for row in rows]


def loss_report(live: Path, snapshot: Path) -> LossReport:
    """Per table: rows of the live brain whose key the snapshot lacks, and their time span.

    Keys are the rowid, or the primary key of WITHOUT ROWID tables. A table that exists only
    in the live brain (created by the newer version's migration) is lost whole.
    """
    with closing(readonly(live)) as brain:
        try:
            brain.execute("ATTACH DATABASE ? AS snap", (f"file:{quote(str(snapshot))}?mode=ro&immutable=1",))
            in_snapshot = set(table_names(brain, "snap"))
            return LossReport(tuple(
                _table_loss(brain, table, table in in_snapshot) for table in table_names(brain)
            ))
        except sqlite3.Error as error:
            raise BrainError(f"comparing {live} with {snapshot} failed: {error}") from None


def _table_loss(brain: sqlite3.Connection, table: str, in_snapshot: bool) -> TableLoss:
    name = _quote(table)
    time_column = _time_column(brain, table)
    span = f", min(m.{_quote(time_column)}), max(m.{_quote(time_column)})" if time_column else ", NULL, NULL"
    if in_snapshot:
        keys = [key if key == "rowid" else _quote(key) for key in _key_columns(brain, table)]
        match = " AND ".join(f"s.{key} IS m.{key}" for key in keys)
        where = f"WHERE NOT EXISTS (SELECT 1 FROM snap.{name} AS s WHERE {match})"
    else:
        where = ""
    rows, first, last = brain.execute(f"SELECT count(*){span} FROM main.{name} AS m {where}").fetchone()
    return TableLoss(table, rows, time_column, _text(first), _text(last), whole_table=not in_snapshot)


def _key_columns(brain: sqlite3.Connection, table: str) -> list[str]:
    """The rowid, or the primary key of a WITHOUT ROWID table (asked of SQLite, not parsed)."""
    try:
        brain.execute(f"SELECT rowid FROM main.{_quote(table)} LIMIT 0")
        return ["rowid"]
    except sqlite3.OperationalError:
        columns = brain.execute(f"PRAGMA main.table_info({_quote(table)})").fetchall()
        return [column[1] for column in sorted(columns, key=lambda c: c[5]) if column[5] > 0]


def _time_column(brain: sqlite3.Connection, table: str) -> str | None:
    columns = [(row[1], (row[2] or "").upper()) for row in brain.execute(f"PRAGMA main.table_info({_quote(table)})")]
    by_name = {name.lower(): name for name, _ in columns}
    for candidate in TIME_COLUMN_NAMES:
        if candidate in by_name:
            return by_name[candidate]
    return next((name for name, kind in columns if "DATE" in kind or "TIME" in kind), None)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _text(value: object) -> str | None:
    return None if value is None else str(value)
