"""Replaying the bad window's rows: copying them from a run's forensic copy back into the live brain.

The runbook: "you may need to ... replay important events". The forensic copy is the whole brain
a restore moved aside; the bad window's rows of a table are those it holds that the snapshot the
run restored from does not (by key, with the same values). Each such row is, in the live brain:

- absent: it is copied, with its key, in one SQLite transaction;
- present with the same values: already there (an earlier replay copied it): nothing to do;
- present with other values: a conflict by primary key (the restored version wrote its own row
  under that key since): it is not copied, and the dry run and the result name it.

So a replay never duplicates a row, a second one copies nothing, and one that fails copies
nothing at all. The Engine may be running: the live brain is opened like any SQLite client (its
WAL and locks honoured), the copy takes a write transaction (`BEGIN IMMEDIATE`, waiting for the
Engine's in-flight write), and the caller holds rollbot's brain lock so no snapshot or restore
overlaps. A table whose schema the running version does not accept is refused, naming why.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.brain.facts import BrainError

SHOWN_KEYS = 20  # keys of conflicts shown to a person; the journal keeps every copied key
BUSY_SECONDS = 10.0  # how long the copy waits for the Engine's write transaction to end


@dataclass(frozen=True)
class Replay:
    """What a replay of one table did (or, for a dry run, would do)."""

    table: str
    dry_run: bool
    columns: tuple[str, ...]
    key: tuple[str, ...]
    bad_window: int  # rows of the bad window: in the forensic copy, not (so) in the snapshot
    copied: tuple[tuple[Any, ...], ...] = ()  # keys copied (a dry run: keys that would be)
    already: int = 0  # rows the live brain holds already, with the same values
    conflicts: tuple[tuple[Any, ...], ...] = field(default=())  # keys the live brain uses for other values

    def describe(self) -> str:
        verb = "would copy" if self.dry_run else "copied"
        text = (
            f"{self.table}: {self.bad_window} row(s) of the bad window in the forensic copy; {verb} "
            f"{len(self.copied)}, {self.already} already in the live brain, {len(self.conflicts)} conflict(s) by "
            f"primary key ({', '.join(self.key)})"
        )
        if self.conflicts:
            shown = ", ".join(_key_text(key) for key in self.conflicts[:SHOWN_KEYS])
            more = f" and {len(self.conflicts) - SHOWN_KEYS} more" if len(self.conflicts) > SHOWN_KEYS else ""
            text += f": {shown}{more} (the live brain holds other rows under these keys; they are not copied)"
        return text


def replay_table(
    live: Path,
    forensic: Path,
    snapshot: Path,
    table: str,
    dry_run: bool,
    journal: Callable[[Replay], None] = lambda replay: None,
) -> Replay:
    """Copy the bad window's rows of `table` that the live brain lacks (see the module).

    `journal` is called with the copied keys inside the write transaction, before it commits: a
    journal that cannot be written rolls the copy back, so no row is copied unjournaled."""
    with closing(sqlite3.connect(live, timeout=BUSY_SECONDS, isolation_level=None)) as brain:
        try:
            for alias, path in (("forensic", forensic), ("snap", snapshot)):
                brain.execute(f"ATTACH DATABASE ? AS {alias}", (f"file:{quote(str(path))}?mode=ro&immutable=1",))
            columns, key = _compatible(brain, table)
            if dry_run:
                return _count(brain, table, columns, key, dry_run=True)
            brain.execute("BEGIN IMMEDIATE")
            try:
                found = _count(brain, table, columns, key, dry_run=False)
                if found.copied:
                    names = ", ".join(_quote(column) for column in columns)
                    picked = ", ".join(f"x.{_quote(column)}" for column in columns)
                    brain.execute(
                        f"INSERT INTO main.{_quote(table)} ({names}) SELECT {picked} {_missing(table, columns, key)}"
                    )
                journal(found)
                brain.execute("COMMIT")
            except BaseException:
                brain.execute("ROLLBACK")
                raise
            return found
        except sqlite3.Error as error:
            raise BrainError(f"replaying {table} from {forensic} into {live} failed: {error}") from None


def _compatible(brain: sqlite3.Connection, table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The columns to copy and the key, or a refusal saying why the live table cannot take the rows."""
    theirs, ours = _table_info(brain, "forensic", table), _table_info(brain, "main", table)
    if not theirs:
        raise BrainError(f"the forensic copy has no table {table}: nothing to replay")
    if not ours:
        raise BrainError(
            f"the live brain has no table {table}: the running version's schema does not take its rows "
            "(upgrade to a version that has it, then replay)"
        )
    if not _table_info(brain, "snap", table):
        raise BrainError(
            f"the snapshot has no table {table}: rollbot cannot tell the bad window's rows from older ones"
        )
    missing = [name for name in theirs if name not in ours]
    if missing:
        raise BrainError(
            f"the live table {table} has no column {', '.join(missing)} that the forensic copy's rows fill: "
            "replaying would drop that data, so it is refused (the running version's schema does not accept them)"
        )
    required = [
        name
        for name, (notnull, default, pk) in ours.items()
        if name not in theirs and notnull and default is None and not pk
    ]
    if required:
        raise BrainError(
            f"the live table {table} requires column(s) {', '.join(required)} (NOT NULL, no default) that the "
            "forensic copy's rows do not have: the running version's schema does not accept them"
        )
    key = _key(brain, table)
    columns = tuple(theirs)
    if key == ("rowid",):
        alias = [name for name, (_, _, pk) in ours.items() if pk == 1]
        if len(alias) == 1 and _is_rowid_alias(brain, table, alias[0]):
            key = (alias[0],)
        else:
            columns = ("rowid", *columns)
    return columns, key


def _count(
    brain: sqlite3.Connection, table: str, columns: tuple[str, ...], key: tuple[str, ...], dry_run: bool
) -> Replay:
    name, keys = _quote(table), ", ".join(f"x.{_quote(k)}" for k in key)
    bad = f"FROM forensic.{name} AS x WHERE {_not_in_snapshot(table, columns, key)}"
    bad_window = brain.execute(f"SELECT count(*) {bad}").fetchone()[0]
    copied = tuple(tuple(row) for row in brain.execute(f"SELECT {keys} {_missing(table, columns, key)}"))
    match = " AND ".join(f"m.{_quote(k)} = x.{_quote(k)}" for k in key)
    same = " AND ".join(f"m.{_quote(c)} IS x.{_quote(c)}" for c in columns)
    already = brain.execute(
        f"SELECT count(*) {bad} AND EXISTS (SELECT 1 FROM main.{name} AS m WHERE {match} AND {same})"
    ).fetchone()[0]
    conflicts = tuple(
        tuple(row)
        for row in brain.execute(
            f"SELECT {keys} {bad} AND EXISTS (SELECT 1 FROM main.{name} AS m WHERE {match} AND NOT ({same}))"
        )
    )
    return Replay(table, dry_run, columns, key, bad_window, copied, already, conflicts)


def _not_in_snapshot(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    """A forensic row of the bad window: the snapshot has no row with its key and its values."""
    match = " AND ".join(f"s.{_quote(k)} = x.{_quote(k)}" for k in key)
    same = " AND ".join(f"s.{_quote(c)} IS x.{_quote(c)}" for c in columns if c != "rowid")
    return f"NOT EXISTS (SELECT 1 FROM snap.{_quote(table)} AS s WHERE {match} AND {same or '1'})"


def _missing(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    """FROM … WHERE for the bad window's rows whose key the live brain does not use at all."""
    match = " AND ".join(f"m.{_quote(k)} = x.{_quote(k)}" for k in key)
    return (
        f"FROM forensic.{_quote(table)} AS x WHERE {_not_in_snapshot(table, columns, key)} "
        f"AND NOT EXISTS (SELECT 1 FROM main.{_quote(table)} AS m WHERE {match}) ORDER BY 1"
    )


def _table_info(brain: sqlite3.Connection, schema: str, table: str) -> dict[str, tuple[bool, Any, int]]:
    """column -> (NOT NULL, default, position in the primary key), in the table's order."""
    return {
        str(row[1]): (bool(row[3]), row[4], int(row[5]))
        for row in brain.execute(f"PRAGMA {schema}.table_info({_quote(table)})")
    }


def _key(brain: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The rowid, or the primary key of a WITHOUT ROWID table (asked of SQLite, not parsed)."""
    try:
        brain.execute(f"SELECT rowid FROM main.{_quote(table)} LIMIT 0")
        return ("rowid",)
    except sqlite3.OperationalError:
        info = brain.execute(f"PRAGMA main.table_info({_quote(table)})").fetchall()
        return tuple(str(row[1]) for row in sorted(info, key=lambda row: row[5]) if row[5] > 0)


def _is_rowid_alias(brain: sqlite3.Connection, table: str, column: str) -> bool:
    """A lone INTEGER PRIMARY KEY column of a rowid table is the rowid itself: copying it copies the key."""
    declared = [row for row in brain.execute(f"PRAGMA main.table_info({_quote(table)})") if row[1] == column]
    return bool(declared) and str(declared[0][2]).upper() == "INTEGER"


def _key_text(key: tuple[Any, ...]) -> str:
    return "/".join(str(part) for part in key)


def _quote(identifier: str) -> str:
    return identifier if identifier == "rowid" else '"' + identifier.replace('"', '""') + '"'
