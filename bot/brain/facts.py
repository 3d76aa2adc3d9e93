"""Facts about SQLite brains: schema version, integrity, checksums, and what a restore loses.

Everything here reads; nothing writes a brain. Live brains are opened read-only (`mode=ro`), so
the Engine keeps running while preflight looks. Snapshots never change once written, so they are
opened `immutable`, which also lets SQLite read a snapshot whose header says WAL without
creating `-wal`/`-shm` files beside it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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
    """What a restore undoes in one table: the bad window's work, row by row, compared by key.

    `rows` are rows added since the snapshot (they leave the live brain), `changed` rows whose
    key both brains hold but whose values differ (they go back to the snapshot's values), and
    `deleted` rows only the snapshot holds (they come back). The time span is that of the
    added rows. New fields have defaults: plans journaled before them read back as they were.

    The other direction, what the live brain lost that the snapshot still has (a migration that
    dropped data the older version expects): `deleted` rows, `dropped_table` when the live brain
    has no such table at all, and `lost_columns`, each "column: what happened to its data"."""

    table: str
    rows: int
    time_column: str | None = None
    first: str | None = None
    last: str | None = None
    whole_table: bool = False
    changed: int = 0
    deleted: int = 0
    dropped_table: bool = False
    lost_columns: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableLoss:
        """Read back from a journaled plan; JSON gives lists where the report has tuples."""
        return cls(**{**data, "lost_columns": tuple(data.get("lost_columns") or ())})

    @property
    def undone(self) -> int:
        return self.rows + self.changed + self.deleted

    def describe(self) -> str:
        span = f" ({self.first} … {self.last})" if self.rows and self.first else ""
        new = " — the table is new since the snapshot" if self.whole_table else ""
        gone = " — the live brain has no such table: it comes back whole" if self.dropped_table else ""
        parts = [f"{self.rows} row(s) added{span}"] if self.rows or not (self.undone or self.lost_columns) else []
        parts += [f"{count} {what}" for count, what in ((self.changed, "changed"), (self.deleted, "deleted")) if count]
        parts += [f"column {lost}" for lost in self.lost_columns]
        return f"{self.table}: {', '.join(parts)}{new}{gone}"


@dataclass(frozen=True)
class Affected:
    """The distinct values of one identifying column (a user, a conversation) among the rows the
    restore takes out of the live brain or sends back to the snapshot's values."""

    table: str
    column: str
    distinct: int
    rows: int
    problem: str | None = None  # set when the column cannot be read (e.g. not in the live table)

    def describe(self) -> str:
        if self.problem:
            return f"{self.table}.{self.column}: not counted ({self.problem})"
        return f"{self.table}.{self.column}: {self.distinct} distinct in {self.rows} row(s)"


@dataclass(frozen=True)
class LossReport:
    tables: tuple[TableLoss, ...]
    affected: tuple[Affected, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossReport:
        return cls(
            tuple(TableLoss.from_dict(table) for table in data.get("tables") or ()),
            tuple(Affected(**each) for each in data.get("affected") or ()),
        )

    @property
    def lost_by_migration(self) -> tuple[TableLoss, ...]:
        """Tables where the live brain lacks what the snapshot has: rows, columns or the table."""
        return tuple(table for table in self.tables if table.deleted or table.lost_columns or table.dropped_table)

    def who(self) -> str:
        """The affected counts in one phrase, for the plan: `conversations.user_id 3, …`."""
        return "; ".join(each.describe() for each in self.affected)

    @property
    def total_rows(self) -> int:
        """Rows added since the snapshot: they leave the live brain."""
        return sum(table.rows for table in self.tables)

    @property
    def total_changed(self) -> int:
        return sum(table.changed for table in self.tables)

    @property
    def total_deleted(self) -> int:
        return sum(table.deleted for table in self.tables)

    @property
    def total_undone(self) -> int:
        """Every row the restore touches: added ones leave, changed ones revert, deleted ones return."""
        return sum(table.undone for table in self.tables)

    def describe(self) -> str:
        lost = [table.describe() for table in self.tables if table.undone or table.lost_columns]
        return "; ".join(lost) if lost else "no rows would be lost"

    def counts(self) -> str:
        """The three totals in one phrase, for a plan's headline and a ticket."""
        return f"{self.total_rows} added, {self.total_changed} changed, {self.total_deleted} deleted"


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
    """The brain's own tables (SQLite's internal ones left out), by name."""
    rows = brain.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [row[0] for row in rows]


def loss_report(live: Path, snapshot: Path, affected: Mapping[str, Sequence[str]] | None = None) -> LossReport:
    """Per table: rows added, changed and deleted since the snapshot, and the added rows' time span.

    Rows are matched by key: the rowid, or the primary key of WITHOUT ROWID tables. Each table
    is compared by SQLite itself with the snapshot ATTACHed: one pass over the live table
    joined to the snapshot's by key (added and changed), one over the snapshot's (deleted).
    Both are key lookups in the b-trees, so time grows with the brain and memory does not; no
    row is ever loaded into Python. Values are compared over the columns both tables have
    (a column a migration added holds nothing the snapshot could revert). A table that exists
    only in the live brain (created by the newer version's migration) is lost whole. A key
    deleted and used again (SQLite reuses the highest rowid after it is deleted) counts as
    changed: to the application it is the same key with other values.

    Both directions: a table only the snapshot has is reported whole (`dropped_table`), and a
    column whose data the live brain lost (dropped by a migration, or emptied where the snapshot
    had a value) is named with the rows it held. `affected` (table → identifying columns) counts
    the distinct users and conversations among the added and changed rows.
    """
    with closing(readonly(live)) as brain:
        try:
            brain.execute("ATTACH DATABASE ? AS snap", (f"file:{quote(str(snapshot))}?mode=ro&immutable=1",))
            in_snapshot, in_live = table_names(brain, "snap"), table_names(brain)
            tables = [_table_loss(brain, table, table in in_snapshot) for table in in_live]
            tables += [_dropped_table(brain, table) for table in in_snapshot if table not in in_live]
            who = tuple(
                _affected(brain, table, column, table in in_snapshot, table in in_live)
                for table, columns in (affected or {}).items()
                for column in columns
            )
            return LossReport(tuple(tables), who)
        except sqlite3.Error as error:
            raise BrainError(f"comparing {live} with {snapshot} failed: {error}") from None


def affected_values(
    live: Path, snapshot: Path, affected: Mapping[str, Sequence[str]]
) -> Iterator[tuple[str, str, str, int]]:
    """(table, column, value, rows) for every distinct identifying value among the rows the
    restore takes out or reverts: the postmortem's CSV of who was affected. Streams from SQLite."""
    with closing(readonly(live)) as brain:
        try:
            brain.execute("ATTACH DATABASE ? AS snap", (f"file:{quote(str(snapshot))}?mode=ro&immutable=1",))
            in_snapshot, in_live = table_names(brain, "snap"), table_names(brain)
            for table, columns in affected.items():
                for column in columns:
                    if table not in in_live or column not in _columns(brain, "main", table):
                        continue
                    query = _leaving(brain, table, table in in_snapshot, f"m.{_quote(column)}, count(*)")
                    for value, rows in brain.execute(
                        f"{query} AND m.{_quote(column)} IS NOT NULL GROUP BY 1 ORDER BY 1"
                    ):
                        yield table, column, str(value), int(rows)
        except sqlite3.Error as error:
            raise BrainError(f"reading who was affected from {live} failed: {error}") from None


def _leaving(brain: sqlite3.Connection, table: str, in_snapshot: bool, select: str) -> str:
    """A SELECT over the live table's rows that leave or revert (all of them, for a new table)."""
    name = _quote(table)
    if not in_snapshot:
        return f"SELECT {select} FROM main.{name} AS m WHERE 1"
    keys = [key if key == "rowid" else _quote(key) for key in _key_columns(brain, table)]
    on = " AND ".join(f"s.{key} = m.{key}" for key in keys)
    same = " AND ".join(f"m.{column} IS s.{column}" for column in _common_columns(brain, table)) or "1"
    return f"SELECT {select} FROM main.{name} AS m LEFT JOIN snap.{name} AS s ON {on} WHERE (s.{keys[0]} IS NULL OR NOT ({same}))"


def _affected(brain: sqlite3.Connection, table: str, column: str, in_snapshot: bool, in_live: bool) -> Affected:
    if not in_live:
        return Affected(table, column, 0, 0, "the live brain has no such table")
    if column not in _columns(brain, "main", table):
        return Affected(table, column, 0, 0, f"the live table {table} has no such column")
    query = _leaving(brain, table, in_snapshot, f"count(DISTINCT m.{_quote(column)}), count(*)")
    distinct, rows = brain.execute(query).fetchone()
    return Affected(table, column, distinct, rows)


def _dropped_table(brain: sqlite3.Connection, table: str) -> TableLoss:
    """A table only the snapshot has: every row of it is data the live brain lost."""
    rows = brain.execute(f"SELECT count(*) FROM snap.{_quote(table)}").fetchone()[0]
    return TableLoss(table, 0, deleted=rows, dropped_table=True)


def _dropped_columns(brain: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """Columns of the snapshot's table that the live one no longer has, with the rows that held data."""
    live = _columns(brain, "main", table)
    dropped = [column for column in _columns(brain, "snap", table) if column not in live]
    if not dropped:
        return ()
    held = brain.execute(
        "SELECT " + ", ".join(f"count({_quote(column)})" for column in dropped) + f" FROM snap.{_quote(table)}"
    ).fetchone()
    return tuple(f"{column} dropped ({count} row(s) held data)" for column, count in zip(dropped, held, strict=True))


def _columns(brain: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [str(row[1]) for row in brain.execute(f"PRAGMA {schema}.table_info({_quote(table)})")]


def _table_loss(brain: sqlite3.Connection, table: str, in_snapshot: bool) -> TableLoss:
    name = _quote(table)
    time_column = _time_column(brain, table)
    if not in_snapshot:
        span = f"min({_quote(time_column)}), max({_quote(time_column)})" if time_column else "NULL, NULL"
        rows, first, last = brain.execute(f"SELECT count(*), {span} FROM main.{name}").fetchone()
        return TableLoss(table, rows, time_column, _text(first), _text(last), whole_table=True)
    keys = [key if key == "rowid" else _quote(key) for key in _key_columns(brain, table)]
    on = " AND ".join(f"s.{key} = m.{key}" for key in keys)
    absent = f"s.{keys[0]} IS NULL"  # a key column is never NULL in a row that matched
    common = _common_columns(brain, table)
    same = " AND ".join(f"m.{column} IS s.{column}" for column in common) or "1"
    when_added = f"CASE WHEN {absent} THEN m.{_quote(time_column)} END" if time_column else "NULL"
    # In the same pass: per common column, rows whose value the live brain lost (NULL where the
    # snapshot's row with the key has one); an unmatched row's s.column is NULL and never counts.
    emptied = "".join(f", coalesce(sum(m.{column} IS NULL AND s.{column} IS NOT NULL), 0)" for column in common)
    added, changed, first, last, *nulled = brain.execute(
        f"SELECT coalesce(sum({absent}), 0), coalesce(sum(NOT {absent} AND NOT ({same})), 0), "
        f"min({when_added}), max({when_added}){emptied} FROM main.{name} AS m LEFT JOIN snap.{name} AS s ON {on}"
    ).fetchone()
    match = " AND ".join(f"m.{key} = s.{key}" for key in keys)
    deleted = brain.execute(
        f"SELECT count(*) FROM snap.{name} AS s WHERE NOT EXISTS (SELECT 1 FROM main.{name} AS m WHERE {match})"
    ).fetchone()[0]
    lost = _dropped_columns(brain, table) + tuple(
        f"{_unquote(column)} emptied in {count} row(s)" for column, count in zip(common, nulled, strict=True) if count
    )
    return TableLoss(
        table, added, time_column, _text(first), _text(last), changed=changed, deleted=deleted, lost_columns=lost
    )


def _common_columns(brain: sqlite3.Connection, table: str) -> list[str]:
    """The columns both the live table and the snapshot's have, quoted, in the live table's order."""
    theirs = {row[1] for row in brain.execute(f"PRAGMA snap.table_info({_quote(table)})")}
    return [_quote(row[1]) for row in brain.execute(f"PRAGMA main.table_info({_quote(table)})") if row[1] in theirs]


def _key_columns(brain: sqlite3.Connection, table: str) -> list[str]:
    """The rowid, or the primary key of a WITHOUT ROWID table (asked of SQLite, not parsed)."""
    try:
        brain.execute(f"SELECT rowid FROM main.{_quote(table)} LIMIT 0")
        return ["rowid"]
    except sqlite3.OperationalError:
        columns = brain.execute(f"PRAGMA main.table_info({_quote(table)})").fetchall()
        return [column[1] for column in sorted(columns, key=lambda c: c[5]) if column[5] > 0]


def _time_column(brain: sqlite3.Connection, table: str) -> str | None:
    columns: list[tuple[str, str]] = [
        (str(row[1]), str(row[2] or "").upper()) for row in brain.execute(f"PRAGMA main.table_info({_quote(table)})")
    ]
    by_name = {name.lower(): name for name, _ in columns}
    for candidate in TIME_COLUMN_NAMES:
        if candidate in by_name:
            return by_name[candidate]
    return next((name for name, kind in columns if "DATE" in kind or "TIME" in kind), None)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _unquote(quoted: str) -> str:
    return quoted[1:-1].replace('""', '"')


def _text(value: object) -> str | None:
    return None if value is None else str(value)
