"""Replaying the bad window's rows from a forensic copy into the live brain, on real SQLite files:
which rows, which keys, what is refused, and that a failed journal copies nothing."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bot.brain.facts import BrainError
from bot.brain.replay import Replay, replay_table

from .fakes import run_sql


def three_brains(
    tmp_path: Path, schema: str, before: list[str], bad_window: list[str], after: list[str]
) -> tuple[Path, Path, Path]:
    """The snapshot (schema + `before`), the forensic copy (+ the bad window) and the live brain:
    the snapshot restored, then the restored version's own writes (`after`)."""
    snapshot, forensic, live = (tmp_path / name for name in ("snapshot.sqlite", "forensic.sqlite", "live.sqlite"))
    run_sql(snapshot, schema, *before)
    shutil.copyfile(snapshot, forensic)
    run_sql(forensic, *bad_window)
    shutil.copyfile(snapshot, live)
    run_sql(live, "PRAGMA journal_mode=WAL", *after)
    return live, forensic, snapshot


def rows(path: Path, table: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as brain:
        return brain.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


FEEDBACK = "CREATE TABLE feedback (id INTEGER PRIMARY KEY, user_id TEXT, content TEXT NOT NULL)"


def test_rows_of_the_bad_window_are_copied_with_their_keys_once(tmp_path: Path) -> None:
    live, forensic, snapshot = three_brains(
        tmp_path,
        FEEDBACK,
        ["INSERT INTO feedback VALUES (1, 'U0', 'old')"],
        ["INSERT INTO feedback VALUES (2, 'U1', 'bad window')", "INSERT INTO feedback VALUES (3, 'U2', 'bad window')"],
        ["INSERT INTO feedback VALUES (2, 'U9', 'after the restore')"],
    )
    journaled: list[Replay] = []

    dry = replay_table(live, forensic, snapshot, "feedback", dry_run=True)
    done = replay_table(live, forensic, snapshot, "feedback", dry_run=False, journal=journaled.append)
    again = replay_table(live, forensic, snapshot, "feedback", dry_run=False)

    assert (dry.bad_window, dry.copied, dry.already, dry.conflicts) == (2, ((3,),), 0, ((2,),))
    assert done.copied == ((3,),) and journaled == [done]
    assert (again.copied, again.already, again.conflicts) == ((), 1, ((2,),))
    assert rows(live, "feedback") == [(1, "U0", "old"), (2, "U9", "after the restore"), (3, "U2", "bad window")]
    assert dry.describe() == (
        "feedback: 2 row(s) of the bad window in the forensic copy; would copy 1, 0 already in the live brain, "
        "1 conflict(s) by primary key (id): 2 (the live brain holds other rows under these keys; they are not copied)"
    )


def test_a_journal_that_fails_copies_nothing(tmp_path: Path) -> None:
    live, forensic, snapshot = three_brains(tmp_path, FEEDBACK, [], ["INSERT INTO feedback VALUES (1, 'U1', 'x')"], [])

    def journal_down(replay: Replay) -> None:
        raise RuntimeError("journal down")

    with pytest.raises(RuntimeError, match="journal down"):
        replay_table(live, forensic, snapshot, "feedback", dry_run=False, journal=journal_down)
    assert rows(live, "feedback") == []


def test_without_rowid_tables_are_keyed_by_their_primary_key(tmp_path: Path) -> None:
    live, forensic, snapshot = three_brains(
        tmp_path,
        "CREATE TABLE facts (name TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID",
        ["INSERT INTO facts VALUES ('a', '1')"],
        ["INSERT INTO facts VALUES ('b', '2')", "UPDATE facts SET value = 'changed' WHERE name = 'a'"],
        [],
    )
    done = replay_table(live, forensic, snapshot, "facts", dry_run=False)
    assert (done.key, done.copied, done.conflicts) == (("name",), (("b",),), (("a",),))
    assert rows(live, "facts") == [("a", "1"), ("b", "2")]


def test_a_rowid_table_without_an_integer_key_keeps_its_rowids(tmp_path: Path) -> None:
    live, forensic, snapshot = three_brains(
        tmp_path,
        "CREATE TABLE notes (body TEXT)",
        ["INSERT INTO notes VALUES ('old')"],
        ["INSERT INTO notes VALUES ('new')"],
        [],
    )
    done = replay_table(live, forensic, snapshot, "notes", dry_run=False)
    assert done.copied == ((2,),)
    with closing(sqlite3.connect(live)) as brain:
        assert brain.execute("SELECT rowid, body FROM notes ORDER BY rowid").fetchall() == [(1, "old"), (2, "new")]


@pytest.mark.parametrize(
    ("live_change", "table", "refusal"),
    [
        ("ALTER TABLE feedback DROP COLUMN user_id", "feedback", "the live table feedback has no column user_id"),
        ("DROP TABLE feedback", "feedback", "the live brain has no table feedback"),
        (
            "ALTER TABLE feedback ADD COLUMN team TEXT NOT NULL DEFAULT 'x'",
            "nothing",
            "the forensic copy has no table nothing",
        ),
    ],
)
def test_tables_the_live_schema_cannot_take_are_refused(
    tmp_path: Path, live_change: str, table: str, refusal: str
) -> None:
    live, forensic, snapshot = three_brains(
        tmp_path, FEEDBACK, [], ["INSERT INTO feedback VALUES (1, 'U1', 'x')"], [live_change]
    )
    with pytest.raises(BrainError, match=refusal):
        replay_table(live, forensic, snapshot, table, dry_run=False)


def test_a_new_not_null_column_without_default_is_refused(tmp_path: Path) -> None:
    live, forensic, snapshot = three_brains(tmp_path, FEEDBACK, [], ["INSERT INTO feedback VALUES (1, 'U1', 'x')"], [])
    rebuilt = "CREATE TABLE feedback (id INTEGER PRIMARY KEY, user_id TEXT, content TEXT NOT NULL, team TEXT NOT NULL)"
    run_sql(live, "DROP TABLE feedback", rebuilt)
    with pytest.raises(BrainError, match=r"requires column\(s\) team \(NOT NULL, no default\)"):
        replay_table(live, forensic, snapshot, "feedback", dry_run=False)


def test_a_column_the_live_table_added_with_a_default_takes_the_rows(tmp_path: Path) -> None:
    live, forensic, snapshot = three_brains(
        tmp_path,
        FEEDBACK,
        [],
        ["INSERT INTO feedback VALUES (1, 'U1', 'x')"],
        ["ALTER TABLE feedback ADD COLUMN score REAL"],
    )
    assert replay_table(live, forensic, snapshot, "feedback", dry_run=False).copied == ((1,),)
    assert rows(live, "feedback") == [(1, "U1", "x", None)]


def test_a_writer_holding_the_brain_makes_the_replay_wait_then_fail_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Engine's write transaction is waited for (busy timeout); one that never ends is an
    error that copies nothing, never a half-copy."""
    monkeypatch.setattr("bot.brain.replay.BUSY_SECONDS", 0.2)
    live, forensic, snapshot = three_brains(tmp_path, FEEDBACK, [], ["INSERT INTO feedback VALUES (1, 'U1', 'x')"], [])
    with closing(sqlite3.connect(live, isolation_level=None)) as engine:
        engine.execute("BEGIN IMMEDIATE")
        with pytest.raises(BrainError, match="database is locked"):
            replay_table(live, forensic, snapshot, "feedback", dry_run=False)
        engine.execute("ROLLBACK")
    assert rows(live, "feedback") == []
    assert replay_table(live, forensic, snapshot, "feedback", dry_run=False).copied == ((1,),)
