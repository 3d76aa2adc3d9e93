"""The loss report in both directions and who was affected, on real SQLite files.

Forward: rows the bad window added or changed leave the live brain; the identifying columns the
configuration names (`brain.affected`) say whose. Backward: what a migration took from the live
brain that the snapshot still has — rows, a dropped column, a column emptied, a whole table.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from bot.brain.facts import Affected, LossReport, TableLoss, affected_values, loss_report

from .fakes import make_brain, run_sql


def snapshot_of(brain: Path, tmp_path: Path) -> Path:
    snapshot = tmp_path / "snapshot.sqlite"
    with closing(sqlite3.connect(brain)) as source, closing(sqlite3.connect(snapshot)) as target:
        source.backup(target)
    return snapshot


def who_brain(tmp_path: Path) -> tuple[Path, Path]:
    """A brain whose conversations say who (user, conversation), snapshotted, then a bad window
    of five turns by three users in four conversations, and one old row edited by a fourth."""
    brain = make_brain(tmp_path / "brain.sqlite", rows=2)
    run_sql(
        brain,
        "ALTER TABLE conversations ADD COLUMN user_id TEXT",
        "ALTER TABLE conversations ADD COLUMN conversation_id TEXT",
        "UPDATE conversations SET user_id = 'U0', conversation_id = 'C0'",
    )
    snapshot = snapshot_of(brain, tmp_path)
    turns = [("U1", "C1"), ("U1", "C1"), ("U2", "C2"), ("U3", "C3"), ("U3", "C4")]
    run_sql(
        brain,
        *(
            f"INSERT INTO conversations (created_at, content, user_id, conversation_id) VALUES ('t', 'x', '{u}', '{c}')"
            for u, c in turns
        ),
        "UPDATE conversations SET user_id = 'U4', content = 'edited' WHERE id = 1",
    )
    return brain, snapshot


def test_affected_counts_distinct_users_and_conversations_of_the_rows_that_leave(tmp_path: Path) -> None:
    brain, snapshot = who_brain(tmp_path)
    report = loss_report(brain, snapshot, {"conversations": ("user_id", "conversation_id")})
    assert report.affected == (
        Affected("conversations", "user_id", 4, 6),
        Affected("conversations", "conversation_id", 5, 6),
    )
    assert (
        report.who()
        == "conversations.user_id: 4 distinct in 6 row(s); conversations.conversation_id: 5 distinct in 6 row(s)"
    )


def test_affected_values_are_the_exact_users_with_their_row_counts(tmp_path: Path) -> None:
    brain, snapshot = who_brain(tmp_path)
    values = list(affected_values(brain, snapshot, {"conversations": ("user_id",)}))
    assert values == [
        ("conversations", "user_id", "U1", 2),
        ("conversations", "user_id", "U2", 1),
        ("conversations", "user_id", "U3", 2),
        ("conversations", "user_id", "U4", 1),
    ]


def test_affected_column_or_table_the_live_brain_lacks_is_named_not_counted(tmp_path: Path) -> None:
    brain, snapshot = who_brain(tmp_path)
    report = loss_report(brain, snapshot, {"conversations": ("team_id",), "sessions": ("user_id",)})
    assert [each.problem for each in report.affected] == [
        "the live table conversations has no such column",
        "the live brain has no such table",
    ]
    assert list(affected_values(brain, snapshot, {"sessions": ("user_id",)})) == []


def test_no_affected_configured_counts_nobody(tmp_path: Path) -> None:
    brain, snapshot = who_brain(tmp_path)
    assert loss_report(brain, snapshot).affected == ()


def test_a_dropped_column_is_data_the_live_brain_lost(tmp_path: Path) -> None:
    """The migration that drops feedback.comment: the snapshot's rows held it, the live brain
    has no such column; the rows themselves are all there (nothing deleted)."""
    brain = make_brain(tmp_path / "brain.sqlite", rows=3)
    run_sql(brain, "ALTER TABLE feedback ADD COLUMN comment TEXT", "UPDATE feedback SET comment = 'c' WHERE id < 3")
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(brain, "ALTER TABLE feedback DROP COLUMN comment")
    report = loss_report(brain, snapshot)
    feedback = next(table for table in report.tables if table.table == "feedback")
    assert feedback.lost_columns == ("comment dropped (2 row(s) held data)",)
    assert (feedback.rows, feedback.changed, feedback.deleted) == (0, 0, 0)
    assert report.lost_by_migration == (feedback,)
    assert report.describe() == "feedback: column comment dropped (2 row(s) held data)"


def test_a_column_emptied_by_a_migration_is_named_with_its_rows(tmp_path: Path) -> None:
    brain = make_brain(tmp_path / "brain.sqlite", rows=4)
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(brain, "UPDATE episodes SET content = NULL WHERE id IN (1, 2, 3)")
    episodes = next(table for table in loss_report(brain, snapshot).tables if table.table == "episodes")
    assert episodes.lost_columns == ("content emptied in 3 row(s)",)
    assert episodes.changed == 3


def test_rows_a_migration_deleted_are_listed_per_table(tmp_path: Path) -> None:
    brain = make_brain(tmp_path / "brain.sqlite", rows=5)
    snapshot = snapshot_of(brain, tmp_path)
    run_sql(brain, "DELETE FROM social_graph", "DELETE FROM knowledge WHERE id = 2")
    report = loss_report(brain, snapshot)
    lost = {table.table: table.deleted for table in report.lost_by_migration}
    assert lost == {"social_graph": 5, "knowledge": 1}


def test_nothing_lost_either_way_lists_nothing(tmp_path: Path) -> None:
    brain = make_brain(tmp_path / "brain.sqlite", rows=2)
    snapshot = snapshot_of(brain, tmp_path)
    report = loss_report(brain, snapshot, {"conversations": ("content",)})
    assert report.lost_by_migration == () and report.describe() == "no rows would be lost"
    assert report.affected == (Affected("conversations", "content", 0, 0),)


def test_the_report_reads_back_from_a_journaled_plan_with_its_new_fields() -> None:
    report = LossReport(
        (TableLoss("feedback", 1, lost_columns=("comment dropped (2 row(s) held data)",)),),
        (Affected("conversations", "user_id", 3, 5),),
    )
    journaled = {
        "tables": [{**vars(report.tables[0]), "lost_columns": list(report.tables[0].lost_columns)}],
        "affected": [vars(report.affected[0])],
    }
    assert LossReport.from_dict(journaled) == report
    assert LossReport.from_dict({"tables": [{"table": "episodes", "rows": 2}]}).affected == ()
