"""Which way a request goes (bot/planning/direction.py), and what a plan says and does about it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.planning.direction import direction, restored_brain_note
from storage import RunKind, RunStatus, RunView


@pytest.mark.parametrize(
    ("running", "version", "asked", "kind", "forward"),
    [
        ("2.4.0", "2.3.1", RunKind.ROLLBACK, RunKind.ROLLBACK, False),
        ("2.3.1", "2.4.1", RunKind.ROLLBACK, RunKind.UPGRADE, True),  # rolling forward to a fixed build
        ("2.9.3", "2.10.0", RunKind.ROLLBACK, RunKind.UPGRADE, True),  # by numbers, not by text
        ("2.3.1", "2.4.0", RunKind.UPGRADE, RunKind.UPGRADE, False),
        ("latest", "2.3.1", RunKind.ROLLBACK, RunKind.ROLLBACK, False),  # no numbers: as asked
        ("2.3.1", "edge", RunKind.UPGRADE, RunKind.UPGRADE, False),
        (None, "2.3.1", RunKind.ROLLBACK, RunKind.ROLLBACK, False),
    ],
)
def test_direction_by_version_numbers(
    running: str | None, version: str, asked: RunKind, kind: RunKind, forward: bool
) -> None:
    found = direction(running, version, asked)
    assert (found.kind, found.rolls_forward, found.refusal) == (kind, forward, None)


def test_a_roll_forward_says_it_is_an_upgrade_not_a_rollback() -> None:
    found = direction("2.3.1", "2.4.1", RunKind.ROLLBACK)
    assert found.why.startswith("rolling forward: 2.4.1 is newer than the running 2.3.1")
    assert "upgrade" in found.why and "no postmortem" in found.why


def test_an_upgrade_to_an_older_version_is_refused_naming_the_rollback() -> None:
    found = direction("2.4.0", "2.3.1", RunKind.UPGRADE)
    assert found.refusal is not None
    assert "older than the running 2.4.0" in found.refusal and "rollbot rollback TARGET 2.3.1" in found.refusal


def restore_run(tables: list[dict[str, object]]) -> RunView:
    now = datetime.now(UTC)
    return RunView(
        id="20261205-120000-abcdef",
        kind=RunKind.ROLLBACK,
        target="engine",
        environment="staging",
        from_version="2.4.0",
        to_version="2.3.1",
        reason="",
        requester="U0ALICE",
        status=RunStatus.SUCCEEDED,
        created_at=now,
        started_at=now,
        finished_at=now,
        current_step=None,
        error=None,
        next_action=None,
        owner=None,
        plan={"brain": {"live_schema": 2, "loss": {"tables": tables}}},
        summary={"forensic_copy": "/srv/engine/data/rollbot-forensic/20261205-120000-abcdef/brain.sqlite"},
    )


TABLES = [{"table": "episodes", "rows": 2}, {"table": "feedback", "rows": 0}, {"table": "conversations", "rows": 3}]


def test_the_note_names_the_forensic_copy_its_rows_and_the_replay_when_the_fix_reads_their_schema() -> None:
    note = restored_brain_note(restore_run(TABLES), "2.4.1", 2, "label io.rollbot.brain-schema", 1)
    assert "restored by run 20261205-120000-abcdef (2.4.0 → 2.3.1)" in note
    assert "2.4.1 will migrate the restored brain (schema 1) again" in note
    assert "rollbot-forensic/20261205-120000-abcdef/brain.sqlite holds 5 row(s) written at schema 2" in note
    assert "(episodes 2, conversations 3)" in note
    assert "can be replayed after the upgrade with `rollbot replay 20261205-120000-abcdef --table TABLE`" in note


def test_the_note_says_when_the_rows_cannot_be_replayed_or_rollbot_cannot_tell() -> None:
    older = restored_brain_note(restore_run(TABLES), "2.4.1", 1, "seen", 1)
    assert "cannot be replayed into 2.4.1's brain: it reads up to schema 1" in older
    unknown = restored_brain_note(restore_run(TABLES), "2.4.1", None, "unknown", 1)
    assert "depends on 2.4.1 reading schema 2" in unknown and "dry run" in unknown
    empty = restored_brain_note(restore_run([]), "2.4.1", 2, "seen", 1)
    assert empty.endswith("nothing to replay")
