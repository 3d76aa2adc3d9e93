"""Facts about real SQLite brains: schema version, integrity, checksum, and the loss report."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import bot.brain.facts
from bot.brain.facts import BrainError, LossReport, TableLoss, check_integrity, loss_report, schema_version, sha256

from .fakes import ENGINE_TABLES, KEYED_TABLE, add_rows, created_at, make_brain, run_sql, upgrade_brain


def losses(report: LossReport) -> dict[str, TableLoss]:
    return {table.table: table for table in report.tables}


def snapshot_of(brain: Path, tmp_path: Path) -> Path:
    """A plain file copy of a closed brain: the state 'before' for the loss report."""
    copy = tmp_path / "snapshot.sqlite"
    shutil.copyfile(brain, copy)
    return copy


def big_brain(path: Path) -> Path:
    """A multi-page brain (hundreds of pages, with an index) so damage lands in real b-tree pages."""
    make_brain(path, rows=0)
    with closing(sqlite3.connect(path)) as brain:
        brain.execute("CREATE INDEX episodes_by_content ON episodes (content)")
        brain.executemany(
            "INSERT INTO episodes (created_at, content) VALUES (?, ?)",
            [(created_at(i % 600), f"episode {i} " + "x" * 300) for i in range(2000)],
        )
        brain.commit()
    assert path.stat().st_size > 100 * 4096
    return path


# --- schema version -------------------------------------------------------------------------------------


def test_schema_version_defaults_to_user_version(tmp_path: Path) -> None:
    """The Engine's migrations bump PRAGMA user_version; that is the default reading."""
    brain = make_brain(tmp_path / "brain.sqlite", schema=7)
    assert schema_version(brain) == 7


def test_schema_version_from_a_configured_query(tmp_path: Path) -> None:
    """Engines that keep a migrations table configure a query; its single value is the version."""
    brain = make_brain(tmp_path / "brain.sqlite", schema=0)
    run_sql(
        brain,
        "CREATE TABLE migrations (version INTEGER, applied_at TEXT)",
        "INSERT INTO migrations VALUES (3, 'a'), (12, 'b'), (5, 'c')",
    )
    assert schema_version(brain, "SELECT max(version) FROM migrations") == 12


@pytest.mark.parametrize(
    "setup, query",
    [
        ("INSERT INTO migrations VALUES ('12')", "SELECT max(version) FROM migrations"),
        ("SELECT 1", "SELECT max(version) FROM migrations"),  # empty table: max() is NULL
        ("INSERT INTO migrations VALUES (1.5)", "SELECT max(version) FROM migrations"),
    ],
    ids=["text", "empty", "real"],
)
def test_schema_version_that_is_not_an_integer_is_a_brain_error(tmp_path: Path, setup: str, query: str) -> None:
    """A version that is text, NULL or a float must not be compared as if it were a number."""
    brain = make_brain(tmp_path / "brain.sqlite")
    run_sql(brain, "CREATE TABLE migrations (version)", setup)
    with pytest.raises(BrainError, match="not an integer"):
        schema_version(brain, query)


def test_schema_version_query_that_fails_is_a_brain_error(tmp_path: Path) -> None:
    """A query naming a table the brain lacks is explained, not a raw sqlite3 exception."""
    brain = make_brain(tmp_path / "brain.sqlite")
    with pytest.raises(BrainError, match="cannot read the schema version"):
        schema_version(brain, "SELECT max(version) FROM migrations")


# --- integrity and checksum ------------------------------------------------------------------------------


def test_check_integrity_passes_a_sound_brain(tmp_path: Path) -> None:
    """A healthy multi-page brain gets the full integrity_check and passes it."""
    assert check_integrity(big_brain(tmp_path / "brain.sqlite")) == ("integrity_check", "ok")


@pytest.mark.parametrize("damage", ["truncate", "overwrite"])
def test_check_integrity_fails_a_damaged_brain(tmp_path: Path, damage: str) -> None:
    """Half a file, or a page of garbage in the middle, is reported, never 'ok'."""
    brain = big_brain(tmp_path / "brain.sqlite")
    size = brain.stat().st_size
    with brain.open("r+b") as handle:
        if damage == "truncate":
            handle.truncate(size // 2)
        else:
            page = (size // 4096) // 2
            handle.seek(page * 4096)
            handle.write(b"\xff" * 4096)
    check, result = check_integrity(brain)
    assert check == "integrity_check"
    assert result != "ok" and result


def test_quick_check_is_used_above_the_size_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above QUICK_CHECK_ABOVE_BYTES the faster quick_check runs, and it still catches damage."""
    brain = big_brain(tmp_path / "brain.sqlite")
    monkeypatch.setattr(bot.brain.facts, "QUICK_CHECK_ABOVE_BYTES", brain.stat().st_size // 4)
    assert check_integrity(brain) == ("quick_check", "ok")
    with brain.open("r+b") as handle:
        handle.truncate(brain.stat().st_size // 2)
    check, result = check_integrity(brain)
    assert check == "quick_check" and result != "ok"


def test_sha256_is_the_digest_of_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read in chunks, the digest must equal hashlib's over the file's bytes."""
    monkeypatch.setattr(bot.brain.facts, "CHUNK", 4096)  # many chunks even for a small file
    brain = big_brain(tmp_path / "brain.sqlite")
    assert sha256(brain) == hashlib.sha256(brain.read_bytes()).hexdigest()


# --- the loss report ------------------------------------------------------------------------------------


def test_loss_report_counts_rows_by_key_not_by_count(tmp_path: Path) -> None:
    """One old row deleted and one new row added: the counts are equal, yet one row is lost."""
    brain = make_brain(tmp_path / "brain.sqlite", rows=3)
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(brain, "DELETE FROM episodes WHERE id = 1")
    add_rows(brain, "episodes", [created_at(0, day=26)])
    with closing(sqlite3.connect(brain)) as live, closing(sqlite3.connect(snapshot)) as snap:
        assert (
            live.execute("SELECT count(*) FROM episodes").fetchone()
            == snap.execute("SELECT count(*) FROM episodes").fetchone()
        )

    report = loss_report(brain, snapshot)
    episodes = losses(report)["episodes"]
    assert (episodes.rows, episodes.first, episodes.last) == (1, created_at(0, day=26), created_at(0, day=26))
    assert report.total_rows == 1, "the other tables did not change"
    assert [t.table for t in report.tables] == sorted([*ENGINE_TABLES, KEYED_TABLE])


def test_loss_report_time_range_covers_exactly_the_lost_rows(tmp_path: Path) -> None:
    """The span is min/max of the new rows' created_at, even when older rows carry later times."""
    brain = make_brain(tmp_path / "brain.sqlite", rows=0)
    add_rows(brain, "feedback", ["2026-11-01T00:00:00Z", "2026-12-31T23:59:00Z"])  # before the snapshot
    snapshot = snapshot_of(brain, tmp_path)
    add_rows(brain, "feedback", ["2026-11-26T03:05:00Z", "2026-11-26T03:01:00Z", "2026-11-26T03:09:00Z"])

    feedback = losses(loss_report(brain, snapshot))["feedback"]
    assert feedback == TableLoss("feedback", 3, "created_at", "2026-11-26T03:01:00Z", "2026-11-26T03:09:00Z")
    assert feedback.describe() == "feedback: 3 row(s) added (2026-11-26T03:01:00Z … 2026-11-26T03:09:00Z)"


def test_loss_report_counts_a_table_new_since_the_snapshot_whole(tmp_path: Path) -> None:
    """A table the newer version's migration created is lost entirely by a restore."""
    brain = make_brain(tmp_path / "brain.sqlite")
    snapshot = snapshot_of(brain, tmp_path)
    upgrade_brain(brain, new_rows=2)
    add_rows(brain, "skills", [created_at(30, day=26)])

    report = loss_report(brain, snapshot)
    skills = losses(report)["skills"]
    assert (skills.rows, skills.whole_table) == (2, True)
    assert (skills.first, skills.last) == (created_at(0, day=26), created_at(30, day=26))
    assert "the table is new since the snapshot" in skills.describe()
    assert all(not losses(report)[t].whole_table and losses(report)[t].rows == 2 for t in ENGINE_TABLES)
    assert report.total_rows == 2 * len(ENGINE_TABLES) + 2


def test_loss_report_names_a_table_only_the_snapshot_has(tmp_path: Path) -> None:
    """A table the live brain dropped adds nothing, but its rows are data the live brain lost:
    the restore brings them back, and the report says so (the other direction of loss)."""
    brain = make_brain(tmp_path / "brain.sqlite")
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(brain, "DROP TABLE feedback")
    report = loss_report(brain, snapshot)
    feedback = losses(report)["feedback"]
    assert (feedback.rows, feedback.deleted, feedback.dropped_table) == (0, 3, True)
    assert report.total_rows == 0 and report.lost_by_migration == (feedback,)
    assert report.describe() == "feedback: 3 deleted — the live brain has no such table: it comes back whole"


def test_loss_report_keys_without_rowid_tables_by_their_primary_key(tmp_path: Path) -> None:
    """A WITHOUT ROWID table has no rowid: new keys are lost rows, a changed value of a kept key is not a new row."""
    brain = make_brain(tmp_path / "brain.sqlite", rows=3)
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(
        brain,
        f"UPDATE {KEYED_TABLE} SET value = 'changed' WHERE key = 'k1'",
        f"INSERT INTO {KEYED_TABLE} VALUES ('k9', 'new'), ('a0', 'new too')",
    )
    facts = losses(loss_report(brain, snapshot))[KEYED_TABLE]
    assert (facts.rows, facts.time_column, facts.whole_table) == (2, None, False)


def test_loss_report_keys_a_composite_primary_key(tmp_path: Path) -> None:
    """Social-graph edges keyed by (source, target): a new edge sharing one end with an old one is still new."""
    brain = make_brain(tmp_path / "brain.sqlite")
    run_sql(
        brain,
        "CREATE TABLE edges (source TEXT, target TEXT, created_at TEXT, PRIMARY KEY (source, target)) WITHOUT ROWID",
        "INSERT INTO edges VALUES ('ann', 'bob', 't1'), ('bob', 'cy', 't2')",
    )
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(brain, "INSERT INTO edges VALUES ('ann', 'cy', 't3'), ('cy', 'bob', 't4')")
    edges = losses(loss_report(brain, snapshot))["edges"]
    assert (edges.rows, edges.first, edges.last) == (2, "t3", "t4")


@pytest.mark.parametrize("options", ["WITHOUT ROWID, STRICT", "WITHOUT ROWID -- keyed by name"])
def test_loss_report_recognises_without_rowid_with_table_options_or_a_comment(tmp_path: Path, options: str) -> None:
    """BUG: `WITHOUT ROWID, STRICT` (SQLite >= 3.37) or a trailing comment hides WITHOUT ROWID from the
    regex, the report compares by a rowid the table lacks, and the whole report fails."""
    brain = make_brain(tmp_path / "brain.sqlite")
    run_sql(
        brain,
        f"CREATE TABLE prefs (name TEXT PRIMARY KEY, value TEXT) {options}",
        "INSERT INTO prefs VALUES ('theme', 'dark')",
    )
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(brain, "INSERT INTO prefs VALUES ('lang', 'en')")
    assert losses(loss_report(brain, snapshot))["prefs"].rows == 1


def test_loss_report_quotes_odd_table_and_column_names(tmp_path: Path) -> None:
    """Tables named 'weird "name"' and 'order' (a keyword) are read like any other."""
    brain = make_brain(tmp_path / "brain.sqlite", tables=('weird "name"', "order"), rows=2)
    snapshot = snapshot_of(brain, tmp_path)
    add_rows(brain, 'weird "name"', [created_at(5, day=26), created_at(6, day=26)])
    add_rows(brain, "order", [created_at(7, day=26)])
    report = losses(loss_report(brain, snapshot))
    assert report['weird "name"'] == TableLoss(
        'weird "name"', 2, "created_at", created_at(5, day=26), created_at(6, day=26)
    )
    assert report["order"] == TableLoss("order", 1, "created_at", created_at(7, day=26), created_at(7, day=26))


def test_loss_report_finds_a_time_column_by_its_declared_type(tmp_path: Path) -> None:
    """No conventional name, but a DATETIME column: it gives the time range."""
    brain = make_brain(tmp_path / "brain.sqlite", tables=())
    run_sql(
        brain,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, written DATETIME)",
        "INSERT INTO notes (body, written) VALUES ('old', '2026-01-01')",
    )
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(brain, "INSERT INTO notes (body, written) VALUES ('new', '2026-11-26'), ('newer', '2026-11-27')")
    notes = losses(loss_report(brain, snapshot))["notes"]
    assert (notes.time_column, notes.first, notes.last, notes.rows) == ("written", "2026-11-26", "2026-11-27", 2)


def test_loss_report_never_writes_the_live_brain(tmp_path: Path) -> None:
    """Preflight reads while the Engine writes: an open write transaction in WAL mode is not
    disturbed, and the brain file's bytes and mtime are the same afterwards."""
    brain = make_brain(tmp_path / "brain.sqlite")
    snapshot = snapshot_of(brain, tmp_path)
    add_rows(brain, "episodes", [created_at(1, day=26)])
    engine = sqlite3.connect(brain, isolation_level=None)
    try:
        engine.execute("PRAGMA wal_autocheckpoint = 0")
        engine.execute("BEGIN IMMEDIATE")
        engine.execute("INSERT INTO episodes (created_at, content) VALUES ('uncommitted', 'x')")
        before = (brain.read_bytes(), os.stat(brain).st_mtime_ns)

        report = loss_report(brain, snapshot)

        assert (brain.read_bytes(), os.stat(brain).st_mtime_ns) == before
        assert losses(report)["episodes"].rows == 1, "the uncommitted row is not seen"
        engine.execute("COMMIT")
    finally:
        engine.close()
    assert losses(loss_report(brain, snapshot))["episodes"].rows == 2


def test_loss_report_of_an_unreadable_snapshot_is_a_brain_error(tmp_path: Path) -> None:
    """A snapshot that is not a database is explained as a BrainError naming both files."""
    brain = make_brain(tmp_path / "brain.sqlite")
    garbage = tmp_path / "snapshot.sqlite"
    garbage.write_bytes(b"not a database at all" * 500)
    with pytest.raises(BrainError, match="comparing"):
        loss_report(brain, garbage)


def test_loss_report_counts_rows_changed_and_deleted_in_the_bad_window(tmp_path: Path) -> None:
    """BUG (issue 12, 9): only new keys were counted, so 1,000 rows updated and 10 deleted in the bad
    window reported "no rows would be lost" although the restore reverts all of them."""
    brain = make_brain(tmp_path / "brain.sqlite", rows=1010)
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(
        brain,
        "UPDATE episodes SET content = 'edited in the bad window' WHERE id <= 1000",
        "DELETE FROM episodes WHERE id > 1000",
    )

    report = loss_report(brain, snapshot)

    episodes = losses(report)["episodes"]
    assert (episodes.rows, episodes.changed, episodes.deleted) == (0, 1000, 10)
    assert report.describe() == "episodes: 1000 changed, 10 deleted"
    assert (report.total_rows, report.total_changed, report.total_deleted, report.total_undone) == (0, 1000, 10, 1010)
    assert all(losses(report)[t].undone == 0 for t in ENGINE_TABLES if t != "episodes")


def test_loss_report_counts_changes_and_deletes_in_without_rowid_tables(tmp_path: Path) -> None:
    """Keyed by the primary key: an edited value is a change, a removed key a delete, a new key an addition."""
    brain = make_brain(tmp_path / "brain.sqlite", rows=5)
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(
        brain,
        f"UPDATE {KEYED_TABLE} SET value = 'changed' WHERE key IN ('k1', 'k2')",
        f"UPDATE {KEYED_TABLE} SET value = 'v3' WHERE key = 'k3'",  # written again, the same value
        f"DELETE FROM {KEYED_TABLE} WHERE key = 'k4'",
        f"INSERT INTO {KEYED_TABLE} VALUES ('k9', 'new')",
    )
    facts = losses(loss_report(brain, snapshot))[KEYED_TABLE]
    assert (facts.rows, facts.changed, facts.deleted) == (1, 2, 1)
    assert facts.describe() == f"{KEYED_TABLE}: 1 row(s) added, 2 changed, 1 deleted"


def test_loss_report_sees_a_value_set_to_null_as_a_change(tmp_path: Path) -> None:
    """NULL compares with IS: a value cleared (or filled in) in the bad window is a change."""
    brain = make_brain(tmp_path / "brain.sqlite", rows=3)
    run_sql(brain, "UPDATE feedback SET content = NULL WHERE id = 3")
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(
        brain, "UPDATE feedback SET content = NULL WHERE id = 1", "UPDATE feedback SET content = 'now set' WHERE id = 3"
    )
    assert losses(loss_report(brain, snapshot))["feedback"].changed == 2


def test_loss_report_compares_only_the_columns_both_brains_have(tmp_path: Path) -> None:
    """A column the migration added is no change of the rows it was added to; an edit of an old column is."""
    brain = make_brain(tmp_path / "brain.sqlite", rows=4)
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(
        brain,
        "ALTER TABLE episodes ADD COLUMN importance REAL DEFAULT 0.5",
        "UPDATE episodes SET content = 'rewritten' WHERE id = 2",
    )
    episodes = losses(loss_report(brain, snapshot))["episodes"]
    assert (episodes.rows, episodes.changed, episodes.deleted) == (0, 1, 0)


def test_table_loss_of_a_plan_journaled_before_the_new_counts_reads_back() -> None:
    """Journaled plans hold TableLoss dicts without `changed`/`deleted`: they read back with zeros."""
    old = {"table": "episodes", "rows": 2, "time_column": "created_at", "first": "a", "last": "b", "whole_table": False}
    table = TableLoss(**old)
    assert (table.rows, table.changed, table.deleted) == (2, 0, 0)
    assert table.describe() == "episodes: 2 row(s) added (a … b)"


def test_describe_lists_only_tables_that_lose_rows() -> None:
    """The one line for the plan and the ticket names only the tables that lose something."""
    report = LossReport((TableLoss("episodes", 2, "created_at", "a", "b"), TableLoss("feedback", 0, "created_at")))
    assert report.describe() == "episodes: 2 row(s) added (a … b)"
    assert report.total_rows == 2
