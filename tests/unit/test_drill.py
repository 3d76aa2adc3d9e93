"""Drills: where they are refused, and what earlier drills make a plan say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.drill import DRILL, rehearsal
from bot.core.rollbot import Rollbot
from bot.errors import InvalidRequest
from storage import Journal, RunStatus
from storage.repository import NewRun

from .fakes import FakeHealth, make_world

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def recorded_drill(
    journal: Journal, target: str, status: RunStatus, rollback_seconds: float | None, downtime: float | None = None
) -> str:
    run = journal.record_plan(NewRun(target, "2.4.0", "cli:alice", [("note_version", "")], kind=DRILL), "cli:alice")
    journal.start(run.id, "cli:alice", "testhost:1")
    journal.finish(
        run.id,
        "cli:alice",
        status,
        None if status is RunStatus.SUCCEEDED else "phase rollback failed",
        summary={"rollback_seconds": rollback_seconds, "downtime_seconds": downtime},
    )
    return run.id


@pytest.mark.parametrize(
    "environment, allow, refused",
    [
        ("production", None, True),
        ("production", True, False),
        ("staging", None, False),
        ("staging", False, True),
    ],
)
def test_drills_are_refused_in_production_unless_allowed(
    tmp_path: Path, journal: Journal, environment: str, allow: bool | None, refused: bool
) -> None:
    world = make_world(tmp_path, environment=environment, allow_drills=allow)
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, set()))
    if refused:
        with pytest.raises(InvalidRequest, match="drills break it on purpose"):
            rollbot.drill("engine", "2.4.0", "cli:alice")
        assert journal.runs() == [], "a refused drill touches nothing, not even the journal"
    else:
        drill = rollbot.drill("engine", "2.4.0", "cli:alice")  # the fake Engine is unhealthy: the drill stops early
        assert drill.kind == DRILL and drill.status is RunStatus.FAILED
        assert drill.error is not None and "must be running and healthy before a drill" in drill.error


def test_no_drills_no_rehearsal(journal: Journal) -> None:
    assert rehearsal(journal, "engine", [], now=NOW) is None


def test_expected_duration_is_the_median_of_the_last_three_successful_drills(journal: Journal) -> None:
    for seconds in (40.0, 10.0, 20.0, 30.0):
        recorded_drill(journal, "engine-staging", RunStatus.SUCCEEDED, seconds, downtime=seconds / 10)
    found = rehearsal(journal, "engine", ["engine-staging"], now=NOW)
    assert found is not None and found.warning is None
    assert (found.drills, found.expected_seconds, found.expected_downtime) == (4, 20.0, 2.0)
    assert found.describe().startswith("expected duration from the last drills: ~20s, downtime ~2s (4 drill(s)")


def test_a_failed_newest_drill_is_a_warning(journal: Journal) -> None:
    recorded_drill(journal, "engine", RunStatus.SUCCEEDED, 12.0)
    failed = recorded_drill(journal, "engine", RunStatus.FAILED, None)
    found = rehearsal(journal, "engine", [], now=NOW)
    assert found is not None and found.expected_seconds == 12.0
    assert found.warning == f"the newest drill ({failed}) failed: phase rollback failed"


def test_a_drill_older_than_90_days_is_a_warning(tmp_path: Path) -> None:
    from storage import connect

    long_ago = NOW - timedelta(days=120)
    journal = Journal(connect(f"sqlite:///{tmp_path}/old.db"), clock=lambda: long_ago)
    recorded_drill(journal, "engine", RunStatus.SUCCEEDED, 15.0)
    found = rehearsal(journal, "engine", [], now=NOW)
    assert found is not None and found.warning == "the newest drill is 120 days old; the runbook asks for one a quarter"
