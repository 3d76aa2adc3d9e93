"""`Rollbot.replay` over a real restore (the real runner, real brain files, a fake Docker host):
what the journal keeps of a replay, and the refusals that touch nothing."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from bot.brain.snapshots import BrainBusy, brain_lock
from bot.core.rollbot import Rollbot
from bot.errors import InvalidRequest
from storage import EventKind, Journal, RunStatus
from storage.repository import NewRun

from .fakes import FakeHealth
from .test_brain_runner import ACTOR, Restore


def restored(tmp_path: Path, journal: Journal) -> tuple[Restore, Rollbot, str]:
    """A run that restored the brain: the two bad-window rows of each table are in its forensic copy only."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    assert scene.run(journal, run_id, plan).status is RunStatus.SUCCEEDED
    rollbot = Rollbot(scene.world.config, journal, scene.world.systems(), FakeHealth(scene.world.compose, {"2.3.1"}))
    return scene, rollbot, run_id


def another_run(journal: Journal) -> str:
    """A run of the same target that restored nothing (just planned), as the journal records one."""
    record = NewRun(
        target="engine", to_version="2.2.0", requester=ACTOR, steps=[("pull", "docker compose pull engine")]
    )
    return journal.record_plan(record, actor=ACTOR).id


def count(brain: Path, table: str) -> int:
    with closing(sqlite3.connect(brain)) as live:
        return int(live.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_dry_run_replay_and_again_are_each_journaled_on_the_run(tmp_path: Path, journal: Journal) -> None:
    scene, rollbot, run_id = restored(tmp_path, journal)
    before = count(scene.brain.path, "episodes")

    dry = rollbot.replay(run_id, "episodes", dry_run=True, actor=ACTOR)
    assert count(scene.brain.path, "episodes") == before
    done = rollbot.replay(run_id, "episodes", dry_run=False, actor=ACTOR)
    again = rollbot.replay(run_id, "episodes", dry_run=False, actor=ACTOR)

    assert (len(dry.copied), len(done.copied), len(again.copied), again.already) == (2, 2, 0, 2)
    assert count(scene.brain.path, "episodes") == before + 2
    events = [
        e for e in journal.run(run_id).events if e.kind in (EventKind.BRAIN_REPLAY_CHECKED, EventKind.BRAIN_REPLAYED)
    ]
    assert [(e.kind, e.actor, e.details["copied"]) for e in events] == [
        (EventKind.BRAIN_REPLAY_CHECKED, ACTOR, 2),
        (EventKind.BRAIN_REPLAYED, ACTOR, 2),
        (EventKind.BRAIN_REPLAYED, ACTOR, 0),
    ]
    assert events[1].details["copied_keys"] == [[key] for (key,) in done.copied]


def test_a_table_only_the_bad_version_has_is_refused_by_name(tmp_path: Path, journal: Journal) -> None:
    _, rollbot, run_id = restored(tmp_path, journal)
    with pytest.raises(
        InvalidRequest, match=f"cannot replay skills from run {run_id}: the live brain has no table skills"
    ):
        rollbot.replay(run_id, "skills", dry_run=False, actor=ACTOR)


def test_no_replay_while_a_run_of_the_target_is_in_progress(tmp_path: Path, journal: Journal) -> None:
    scene, rollbot, run_id = restored(tmp_path, journal)
    other = another_run(journal)
    journal.start(other, ACTOR, "testhost:2")
    before = count(scene.brain.path, "episodes")
    with pytest.raises(InvalidRequest, match=f"run {other} of engine is in progress; replay after it ends"):
        rollbot.replay(run_id, "episodes", dry_run=False, actor=ACTOR)
    assert count(scene.brain.path, "episodes") == before


def test_no_replay_while_a_snapshot_holds_the_brain(tmp_path: Path, journal: Journal) -> None:
    scene, rollbot, run_id = restored(tmp_path, journal)
    with brain_lock(scene.brain.path, "a snapshot of engine's brain"), pytest.raises(BrainBusy):
        rollbot.replay(run_id, "episodes", dry_run=False, actor=ACTOR)


def test_a_run_that_restored_no_brain_or_an_unknown_run_is_refused(tmp_path: Path, journal: Journal) -> None:
    _, rollbot, _ = restored(tmp_path, journal)
    unrestored = another_run(journal)
    with pytest.raises(InvalidRequest, match=f"run {unrestored} restored no brain"):
        rollbot.replay(unrestored, "episodes", dry_run=True, actor=ACTOR)
    with pytest.raises(InvalidRequest, match="no run 'nope' in the journal"):
        rollbot.replay("nope", "episodes", dry_run=True, actor=ACTOR)
