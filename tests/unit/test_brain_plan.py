"""Brain preflight: whether a restore is needed, from which snapshot, and refusals that touch nothing."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

import bot.planning.brain_plan
from bot.brain.snapshots import RUNBOOK_NAME, Snapshot, take_snapshot
from bot.config import BrainConfig
from bot.core.rollbot import Rollbot
from bot.planning.brain_plan import BRAIN_CHECKS, SCHEMA_LABEL, BrainChoice
from bot.planning.plan import CHECKS, Check, CheckResult, Plan, RollbackRequest, StepKind, make_plan
from bot.planning.preflight import Preflight, Refused
from bot.reporting.postmortem import build, to_jira_wiki, to_markdown
from bot.terminal.render import render_plan
from handlers.plan_blocks import plan_message
from storage import Journal, SchemaSighting

from .fakes import ENGINE_TABLES, REPO, FakeHealth, World, brain_config, make_brain, make_world, run_sql, upgrade_brain

TARGET_IMAGE = f"{REPO}:2.3.1"
RESTORE_STEPS = [
    StepKind.CAPTURE_LOGS,
    StepKind.STAGE_SNAPSHOT,
    StepKind.SET_IMAGE_TAG,
    StepKind.PULL,
    StepKind.STOP,
    StepKind.SWAP_BRAIN,
    StepKind.START,
    StepKind.VERIFY_HEALTH,
]
IMAGE_STEPS = [s for s in RESTORE_STEPS if s not in (StepKind.STAGE_SNAPSHOT, StepKind.SWAP_BRAIN)]


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def brain_world(tmp_path: Path, brain: BrainConfig | None = None) -> World:
    """The Engine on 2.4.0 with a brain at schema 1 (what 2.3.1 wrote)."""
    brain = brain or brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    return make_world(tmp_path, brain=brain)


def brain_of(world: World) -> BrainConfig:
    brain = world.config.targets["engine"].brain
    assert brain is not None
    return brain


def label(world: World, value: str) -> None:
    """The 2.3.1 image is on this host and says which brain schema it reads."""
    world.docker.host.add(TARGET_IMAGE)
    world.docker.labels[TARGET_IMAGE] = {SCHEMA_LABEL: value}


def snapshot(world: World, tag: str | None, hours: float = 1.0) -> Snapshot:
    return take_snapshot(brain_of(world), tag, now=hours_ago(hours))


def upgraded(world: World, tag: str | None = None) -> Snapshot:
    """A snapshot at schema 1, then 2.4.0's migration (schema 2, a new table) and two rows per table."""
    taken = snapshot(world, tag)
    upgrade_brain(brain_of(world).path, schema=2, new_rows=2)
    return taken


def plan_for(world: World, choice: BrainChoice = BrainChoice.AUTO) -> Plan:
    request = RollbackRequest("engine", "2.3.1", "cli:alice", "5xx after deploy", brain=choice)
    return make_plan(request, world.config, world.systems())


def check(plan: Plan, name: str) -> Check:
    [found] = [c for c in plan.checks if c.name == name]
    return found


def assert_blocked_at(plan: Plan, name: str, result: CheckResult = CheckResult.FAILED) -> None:
    """Everything before `name` passed or warned, `name` blocked, every later check was not run."""
    names = [c.name for c in plan.checks]
    assert names == [*CHECKS, *BRAIN_CHECKS]
    index = names.index(name)
    assert all(c.result in (CheckResult.PASSED, CheckResult.WARNING) for c in plan.checks[:index]), plan.checks
    assert plan.checks[index].result is result
    assert all(c.result is CheckResult.NOT_RUN for c in plan.checks[index + 1 :])
    assert plan.refusal == plan.checks[index].detail
    assert not plan.approvable and plan.steps == ()


def untouched(world: World) -> tuple[bytes, int, list[str]]:
    """What a plan must never change: the brain's bytes and mtime, and the brain folder's listing.
    (A read-only SQLite reader of a WAL brain may create an empty -wal/-shm: that holds no data.)"""
    path = brain_of(world).path
    listing = sorted(
        p.name
        for p in path.parent.iterdir()
        if not (p.name.endswith(("-wal", "-shm")) and p.stat().st_size in (0, 32768))
    )
    return path.read_bytes(), os.stat(path).st_mtime_ns, listing


# --- a restore is needed -----------------------------------------------------------------------------


def test_restore_is_planned_when_the_brain_is_newer_than_the_label_says(tmp_path: Path) -> None:
    """Label says 2.3.1 reads schema 1, the brain is at 2: restore, with every restore check and the loss."""
    world = brain_world(tmp_path)
    taken = upgraded(world)
    label(world, "1")
    before = untouched(world)

    plan = plan_for(world)

    assert [c.name for c in plan.checks] == [*CHECKS, *BRAIN_CHECKS]
    assert all(c.result is CheckResult.PASSED for c in plan.checks if c.name != "data the restore removes"), plan.checks
    assert plan.approvable and plan.restores_brain
    assert plan.brain is not None and plan.brain.snapshot is not None and plan.brain.loss is not None
    assert (plan.brain.live_schema, plan.brain.target_reads) == (2, 1)
    assert SCHEMA_LABEL in plan.brain.target_reads_source
    assert plan.brain.snapshot.path == taken.path
    assert plan.brain.loss.total_rows == 2 * len(ENGINE_TABLES) + 1
    removes = check(plan, "data the restore removes")
    assert removes.result is CheckResult.WARNING and "11 row(s)" in removes.detail and "forensic copy" in removes.detail
    assert "schema 2" in check(plan, "brain schema").detail and "restore" in check(plan, "brain schema").detail
    assert untouched(world) == before, "preflight only looks"


def test_restore_steps_follow_the_runbook_order(tmp_path: Path) -> None:
    """Stage after the logs are captured (before anything stops), swap right after the drain-stop."""
    world = brain_world(tmp_path)
    taken = upgraded(world)
    label(world, "1")
    plan = plan_for(world)
    kinds = [s.kind for s in plan.steps]
    assert kinds == RESTORE_STEPS
    assert kinds.index(StepKind.STAGE_SNAPSHOT) == kinds.index(StepKind.CAPTURE_LOGS) + 1
    assert kinds.index(StepKind.SWAP_BRAIN) == kinds.index(StepKind.STOP) + 1
    assert taken.path.name in plan.steps[1].description
    assert all(s.skip_reason is None for s in plan.steps)


def test_schema_comes_from_a_snapshot_taken_while_the_target_ran(tmp_path: Path) -> None:
    """No label on this host: the sidecar of a snapshot taken while 2.3.1 ran says it read schema 1."""
    world = brain_world(tmp_path)
    snapshot(world, "2.3.1", hours=30)
    taken = upgraded(world, tag="2.3.1")
    plan = plan_for(world)
    assert plan.approvable and plan.restores_brain and plan.brain is not None
    assert plan.brain.target_reads == 1
    assert plan.brain.target_reads_source == f"snapshot {taken.path.name}, taken while 2.3.1 ran"


def test_a_label_wins_over_a_snapshot(tmp_path: Path) -> None:
    """The image says what it reads; a snapshot is only circumstantial evidence."""
    world = brain_world(tmp_path)
    upgraded(world, tag="2.3.1")
    label(world, "2")
    plan = plan_for(world)
    assert plan.brain is not None and plan.brain.target_reads == 2 and not plan.restores_brain


def test_a_configured_schema_query_reads_a_migrations_table(tmp_path: Path) -> None:
    """With schema_query set, both the brain's and the snapshots' versions come from the migrations table."""
    base = brain_config(tmp_path)
    brain = BrainConfig(
        path=base.path, snapshots_dir=base.snapshots_dir, schema_query="SELECT max(version) FROM migrations"
    )
    world = brain_world(tmp_path, brain)
    run_sql(brain.path, "CREATE TABLE migrations (version INTEGER)", "INSERT INTO migrations VALUES (40), (41)")
    taken = snapshot(world, None)
    run_sql(brain.path, "INSERT INTO migrations VALUES (42)")
    label(world, "41")
    plan = plan_for(world)
    assert plan.brain is not None and (plan.brain.live_schema, plan.brain.target_reads) == (42, 41)
    assert plan.restores_brain and plan.brain.snapshot is not None
    assert (plan.brain.snapshot.path, plan.brain.snapshot.schema_version) == (taken.path, 41)


# --- no restore ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reads", ["2", "3"])
def test_no_restore_when_the_target_reads_the_brain(tmp_path: Path, reads: str) -> None:
    """The target reads schema 2 (or newer): an image-only plan, and the restore checks are not listed at all."""
    world = brain_world(tmp_path)
    upgraded(world)
    label(world, reads)
    plan = plan_for(world)
    assert [c.name for c in plan.checks] == [*CHECKS, BRAIN_CHECKS[0]]
    assert check(plan, "brain schema").result is CheckResult.PASSED
    assert "no restore needed" in check(plan, "brain schema").detail
    assert plan.approvable and not plan.restores_brain
    assert [s.kind for s in plan.steps] == IMAGE_STEPS


def test_no_brain_file_means_nothing_to_restore(tmp_path: Path) -> None:
    """A configured brain that does not exist yet: a warning, and an image-only plan."""
    world = make_world(tmp_path, brain=brain_config(tmp_path))
    plan = plan_for(world)
    assert [c.name for c in plan.checks] == [*CHECKS, BRAIN_CHECKS[0]]
    assert check(plan, "brain schema").result is CheckResult.WARNING
    assert plan.approvable and not plan.restores_brain
    assert [s.kind for s in plan.steps] == IMAGE_STEPS


# --- unknown: ask the person ---------------------------------------------------------------------------


@pytest.mark.parametrize("label_value", [None, "two"], ids=["no-label", "label-not-a-number"])
def test_unknown_schema_asks_with_the_facts(tmp_path: Path, label_value: str | None) -> None:
    """Neither a usable label nor a snapshot of 2.3.1: the plan stops with a question, never a guess."""
    world = brain_world(tmp_path)
    taken = upgraded(world, tag="2.4.0")
    if label_value is not None:
        label(world, label_value)
    before = untouched(world)

    plan = plan_for(world)

    assert_blocked_at(plan, "brain schema", CheckResult.ASK)
    assert plan.question is not None and plan.question == plan.refusal
    assert "cannot tell which brain schema 2.3.1 reads" in plan.question
    assert "schema 2" in plan.question and taken.path.name in plan.question
    assert untouched(world) == before


def test_unknown_schema_and_restore_chosen_restores(tmp_path: Path) -> None:
    """--brain restore answers the question: the snapshot older in schema than the brain is used."""
    world = brain_world(tmp_path)
    taken = upgraded(world, tag="2.4.0")
    plan = plan_for(world, BrainChoice.RESTORE)
    assert check(plan, "brain schema").result is CheckResult.WARNING
    assert "restore as asked" in check(plan, "brain schema").detail
    assert plan.approvable and plan.restores_brain and plan.question is None
    assert plan.brain is not None and plan.brain.snapshot is not None and plan.brain.snapshot.path == taken.path
    assert [s.kind for s in plan.steps] == RESTORE_STEPS


def test_unknown_schema_and_keep_chosen_keeps(tmp_path: Path) -> None:
    """--brain keep answers the question: image-only plan, the restore checks not listed."""
    world = brain_world(tmp_path)
    upgraded(world, tag="2.4.0")
    plan = plan_for(world, BrainChoice.KEEP)
    assert [c.name for c in plan.checks] == [*CHECKS, BRAIN_CHECKS[0]]
    assert check(plan, "brain schema").result is CheckResult.WARNING
    assert "keep as asked" in check(plan, "brain schema").detail
    assert plan.approvable and not plan.restores_brain
    assert [s.kind for s in plan.steps] == IMAGE_STEPS


def test_keep_is_refused_when_a_restore_is_known_to_be_needed(tmp_path: Path) -> None:
    """2.3.1 cannot run on a schema-2 brain: keeping it would only give an Engine that cannot start."""
    world = brain_world(tmp_path)
    upgraded(world)
    label(world, "1")
    plan = plan_for(world, BrainChoice.KEEP)
    assert_blocked_at(plan, "brain schema")
    assert "must be restored" in (plan.refusal or "")


def test_restore_can_be_asked_for_when_not_needed(tmp_path: Path) -> None:
    """The person may want the snapshot back anyway: a warning, and a restore plan."""
    world = brain_world(tmp_path)
    upgraded(world)
    label(world, "2")
    plan = plan_for(world, BrainChoice.RESTORE)
    assert check(plan, "brain schema").result is CheckResult.WARNING
    assert plan.approvable and plan.restores_brain


# --- refusals ------------------------------------------------------------------------------------------


def test_no_snapshot_refuses(tmp_path: Path) -> None:
    """A restore is needed and there is nothing to restore from: refused, saying where it looked."""
    world = brain_world(tmp_path)
    upgrade_brain(brain_of(world).path, schema=2)
    label(world, "1")
    before = untouched(world)
    plan = plan_for(world)
    assert_blocked_at(plan, "snapshot")
    assert str(brain_of(world).snapshots_dir) in (plan.refusal or "") and RUNBOOK_NAME in (plan.refusal or "")
    assert untouched(world) == before


def test_only_a_snapshot_newer_in_schema_refuses_naming_it(tmp_path: Path) -> None:
    """A snapshot taken after the migration is no use to 2.3.1: refused, naming it and both schemas."""
    world = brain_world(tmp_path)
    upgrade_brain(brain_of(world).path, schema=2)
    newer = snapshot(world, "2.4.0")
    label(world, "1")
    plan = plan_for(world)
    assert_blocked_at(plan, "snapshot")
    assert newer.path.name in (plan.refusal or "")
    assert "schema 2" in (plan.refusal or "") and "reads up to 1" in (plan.refusal or "")


def test_a_newer_schema_snapshot_is_passed_over_for_a_readable_older_one(tmp_path: Path) -> None:
    """Newest first, but only among snapshots the target can read."""
    world = brain_world(tmp_path)
    readable = snapshot(world, "2.3.1", hours=3)
    upgrade_brain(brain_of(world).path, schema=2)
    snapshot(world, "2.4.0", hours=1)
    label(world, "1")
    plan = plan_for(world)
    assert plan.approvable and plan.brain is not None and plan.brain.snapshot is not None
    assert plan.brain.snapshot.path == readable.path


@pytest.mark.parametrize("damage", ["truncated", "tampered"])
def test_a_corrupt_newest_snapshot_refuses_without_falling_back(tmp_path: Path, damage: str) -> None:
    """The newest readable snapshot fails verification: refused at 'snapshot verifies', naming it. An older
    snapshot loses more data; choosing it silently would be a decision about data nobody made."""
    world = brain_world(tmp_path)
    older = snapshot(world, None, hours=5)
    newest = snapshot(world, None, hours=1)
    upgrade_brain(brain_of(world).path, schema=2)
    label(world, "1")
    if damage == "truncated":
        with newest.path.open("r+b") as handle:
            handle.truncate(newest.size // 2)
    else:
        with closing(sqlite3.connect(newest.path)) as edit:
            edit.execute("DELETE FROM episodes")
            edit.commit()

    plan = plan_for(world)

    assert_blocked_at(plan, "snapshot verifies")
    assert newest.path.name in (plan.refusal or "") and older.path.name not in (plan.refusal or "")
    assert check(plan, "snapshot").result is CheckResult.PASSED and newest.path.name in check(plan, "snapshot").detail


def test_a_hand_made_snapshot_that_is_not_a_database_refuses(tmp_path: Path) -> None:
    """The runbook's file exists but is garbage: its schema cannot be read and it does not verify."""
    world = brain_world(tmp_path)
    upgrade_brain(brain_of(world).path, schema=2)
    label(world, "1")
    junk = brain_of(world).path.parent / RUNBOOK_NAME
    junk.write_bytes(b"\x00garbage" * 2000)
    plan = plan_for(world)
    assert_blocked_at(plan, "snapshot verifies")
    assert RUNBOOK_NAME in (plan.refusal or "")


def test_a_hand_made_snapshot_is_used_like_any_other(tmp_path: Path) -> None:
    """brain-pre-upgrade.db beside the brain, made by the runbook's procedure, is a valid source."""
    world = brain_world(tmp_path)
    hand = brain_of(world).path.parent / RUNBOOK_NAME
    shutil.copyfile(brain_of(world).path, hand)
    upgrade_brain(brain_of(world).path, schema=2)
    label(world, "1")
    plan = plan_for(world)
    assert plan.approvable and plan.brain is not None and plan.brain.snapshot is not None
    assert (plan.brain.snapshot.path, plan.brain.snapshot.by_hand) == (hand, True)
    assert "by hand" in check(plan, "snapshot").detail
    assert check(plan, "snapshot verifies").detail == "integrity check passes"


def test_an_old_snapshot_is_a_warning_not_a_refusal(tmp_path: Path) -> None:
    """Older than max_snapshot_age_hours: allowed, but the plan says more data is lost."""
    base = brain_config(tmp_path)
    brain = BrainConfig(path=base.path, snapshots_dir=base.snapshots_dir, max_snapshot_age_hours=2)
    world = brain_world(tmp_path, brain)
    snapshot(world, None, hours=3)
    upgrade_brain(brain.path, schema=2)
    label(world, "1")
    plan = plan_for(world)
    assert check(plan, "snapshot").result is CheckResult.WARNING
    assert "older than 2h" in check(plan, "snapshot").detail
    assert plan.approvable


def test_not_enough_room_for_the_staged_copy_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The staged copy needs the snapshot's size plus a margin beside the brain."""
    monkeypatch.setattr(bot.planning.brain_plan, "DISK_MARGIN_BYTES", 2**62)
    world = brain_world(tmp_path)
    upgraded(world)
    label(world, "1")
    plan = plan_for(world)
    assert_blocked_at(plan, "free disk space")
    assert "the staged copy needs" in (plan.refusal or "")


def test_a_schema_query_that_fails_refuses_at_the_brain_schema_check(tmp_path: Path) -> None:
    """A misconfigured schema query is a refusal that says why, not a crash."""
    base = brain_config(tmp_path)
    brain = BrainConfig(
        path=base.path, snapshots_dir=base.snapshots_dir, schema_query="SELECT max(version) FROM migrations"
    )
    world = brain_world(tmp_path, brain)
    plan = plan_for(world)
    assert_blocked_at(plan, "brain schema")
    assert "cannot read the schema version" in (plan.refusal or "")


def test_a_restore_plan_is_json_for_the_journal(tmp_path: Path) -> None:
    """The journal stores the plan: snapshot path, loss rows and schemas survive as JSON."""
    world = brain_world(tmp_path)
    taken = upgraded(world)
    label(world, "1")
    data = plan_for(world).to_dict()
    assert data["brain"]["snapshot"]["path"] == str(taken.path)
    assert data["brain"]["live_schema"] == 2 and data["brain"]["restore"] is True
    assert sum(table["rows"] for table in data["brain"]["loss"]["tables"]) == 11


# --- the preflight bookkeeping the brain checks rely on ----------------------------------------------------


def test_preflight_lists_checks_that_did_not_run_and_drops_those_that_do_not_apply() -> None:
    """A refusal shows the whole list (later checks 'not run'); checks that do not apply vanish."""
    preflight = Preflight(["a", "b", "c", "d"])
    preflight.passed("a", "fine")
    preflight.not_applicable(["d"])
    with pytest.raises(Refused):
        preflight.fail("b", "broken")
    assert [(c.name, c.result) for c in preflight.finish()] == [
        ("a", CheckResult.PASSED),
        ("b", CheckResult.FAILED),
        ("c", CheckResult.NOT_RUN),
    ]


def test_a_question_blocks_like_a_failure_but_is_not_one() -> None:
    """ASK stops preflight and blocks the plan; warnings do not."""
    preflight = Preflight(["a", "b"])
    preflight.warn("a", "careful")
    with pytest.raises(Refused):
        preflight.ask("b", "restore or keep?")
    checks = preflight.finish()
    assert [c.result for c in checks] == [CheckResult.WARNING, CheckResult.ASK]
    assert [c.result.blocks for c in checks] == [False, True]
    assert CheckResult.FAILED.blocks and not CheckResult.NOT_RUN.blocks and not CheckResult.PASSED.blocks


# --- facts a real deployment has: no label ------------------------------------------------------------


def went_live(world: World, when: datetime) -> None:
    """The running 2.4.0 container was created (the upgrade happened) at `when`."""
    container = world.docker.containers["c0ffee"]
    world.docker.containers["c0ffee"] = replace(container, created_at=when)


def hand_made_snapshot(world: World, hours: float) -> Path:
    """The runbook's `sqlite3 brain.sqlite ".backup brain-pre-upgrade.db"`, `hours` ago: no sidecar."""
    brain = brain_of(world).path
    copy = brain.with_name(RUNBOOK_NAME)
    with closing(sqlite3.connect(brain)) as live, closing(sqlite3.connect(copy)) as target:
        live.backup(target)
    when = hours_ago(hours).timestamp()
    os.utime(copy, (when, when))
    return copy


def plan_seeing(world: World, seen: dict[str, int], choice: BrainChoice = BrainChoice.AUTO) -> Plan:
    """A plan whose journal saw each version in `seen` healthy on that schema."""

    def schema_seen(target: str, version: str) -> SchemaSighting | None:
        if target != "engine" or version not in seen:
            return None
        at = hours_ago(48)
        return SchemaSighting(target, version, seen[version], at, at, "status")

    request = RollbackRequest("engine", "2.3.1", "cli:alice", "5xx after deploy", brain=choice)
    return make_plan(request, world.config, world.systems(), schema_seen=schema_seen)


def test_what_rollbot_saw_decides_when_no_label_says(tmp_path: Path) -> None:
    """rollbot saw 2.3.1 healthy on schema 1; the brain is at 2 now: restore, and the plan says why."""
    world = brain_world(tmp_path)
    upgraded(world, tag="2.4.0")
    plan = plan_seeing(world, {"2.3.1": 1, "2.4.0": 2})
    assert plan.approvable and plan.restores_brain and plan.brain is not None
    assert plan.brain.target_reads == 1
    assert "rollbot saw 2.3.1 healthy on schema 1 (status" in check(plan, "brain schema").detail


def test_a_label_wins_over_what_rollbot_saw(tmp_path: Path) -> None:
    world = brain_world(tmp_path)
    upgraded(world, tag="2.4.0")
    label(world, "2")
    plan = plan_seeing(world, {"2.3.1": 1})
    assert plan.brain is not None and plan.brain.target_reads == 2 and not plan.restores_brain
    assert SCHEMA_LABEL in check(plan, "brain schema").detail


def test_a_hand_made_pre_upgrade_snapshot_at_a_lower_schema_means_the_upgrade_migrated(tmp_path: Path) -> None:
    """No label, nothing seen: brain-pre-upgrade.db was taken before 2.4.0 started, at schema 1,
    and the brain is at 2 now: the upgrade migrated it, so restore from that file."""
    world = brain_world(tmp_path)
    copy = hand_made_snapshot(world, hours=2)
    upgrade_brain(brain_of(world).path, schema=2, new_rows=2)
    went_live(world, hours_ago(1))

    plan = plan_for(world)

    assert plan.approvable and plan.restores_brain and plan.brain is not None and plan.brain.snapshot is not None
    assert plan.brain.snapshot.path == copy and plan.brain.snapshot.by_hand
    detail = check(plan, "brain schema").detail
    assert f"inferred from {RUNBOOK_NAME}, taken before 2.4.0 started" in detail
    assert "the upgrade migrated the brain to 2" in detail
    assert [s.kind for s in plan.steps] == RESTORE_STEPS


def test_a_pre_upgrade_snapshot_at_the_live_schema_means_image_only(tmp_path: Path) -> None:
    """The upgrade did not migrate: same schema before and now, so the brain is kept."""
    world = brain_world(tmp_path)
    hand_made_snapshot(world, hours=2)
    went_live(world, hours_ago(1))
    before = untouched(world)

    plan = plan_for(world)

    assert plan.approvable and not plan.restores_brain
    assert [s.kind for s in plan.steps] == IMAGE_STEPS
    detail = check(plan, "brain schema").detail
    assert "no restore needed" in detail and "the upgrade did not migrate the brain" in detail
    assert untouched(world) == before


def test_a_snapshot_taken_after_the_upgrade_says_nothing_about_it(tmp_path: Path) -> None:
    """Taken while 2.4.0 already ran (after its container was created): no inference, a question."""
    world = brain_world(tmp_path)
    upgrade_brain(brain_of(world).path, schema=2, new_rows=2)
    went_live(world, hours_ago(3))
    hand_made_snapshot(world, hours=1)
    plan = plan_for(world)
    assert plan.question is not None and not plan.approvable


def test_a_pre_upgrade_snapshot_of_another_version_says_nothing_about_the_target(tmp_path: Path) -> None:
    """A sidecar that names 2.2.0: the snapshot tells what 2.2.0 read, not 2.3.1."""
    world = brain_world(tmp_path)
    snapshot(world, "2.2.0", hours=2)
    upgrade_brain(brain_of(world).path, schema=2, new_rows=2)
    went_live(world, hours_ago(1))
    assert plan_for(world).question is not None


def test_a_question_names_the_snapshot_a_restore_would_use_and_what_it_removes(tmp_path: Path) -> None:
    """Asked in place: the plan carries the restore option (snapshot, rows) for the buttons and the prompt."""
    world = brain_world(tmp_path)
    taken = upgraded(world, tag="2.4.0")
    plan = plan_for(world)
    assert plan.question is not None and plan.steps == ()
    assert plan.brain is not None and plan.brain.asking and not plan.restores_brain
    assert plan.brain.snapshot is not None and plan.brain.snapshot.path == taken.path
    assert plan.brain.loss is not None and plan.brain.loss.total_rows == 2 * len(ENGINE_TABLES) + 1
    assert f"restore from {taken.path.name}" in plan.question and "11 row(s) leave the live brain" in plan.question
    assert Plan.from_dict(plan.to_dict()).brain == plan.brain


def test_a_question_with_no_snapshot_offers_only_keeping(tmp_path: Path) -> None:
    world = brain_world(tmp_path)
    upgrade_brain(brain_of(world).path, schema=2, new_rows=2)
    plan = plan_for(world)
    assert plan.question is not None and "no snapshot to restore from" in plan.question
    assert plan.brain is not None and plan.brain.asking and plan.brain.snapshot is None


def test_a_bad_window_that_only_edited_and_deleted_rows_is_shown_as_undone_in_plan_and_postmortem(
    tmp_path: Path,
    journal: Journal,
) -> None:
    """BUG (issue 12, 9): 1,000 rows updated and 10 deleted since the snapshot were "no rows would be
    lost" in the plan, and the postmortem listed no table. Now the check warns with the counts, both
    plans show them per table, and the postmortem's table has a column for each."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1, rows=1010)
    world = make_world(tmp_path, brain=brain)
    snapshot(world, None)
    run_sql(
        brain.path,
        "PRAGMA user_version = 2",
        "UPDATE episodes SET content = 'edited' WHERE id <= 1000",
        "DELETE FROM episodes WHERE id > 1000",
    )
    label(world, "1")
    planned = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"})).plan(
        RollbackRequest("engine", "2.3.1", "cli:alice", "5xx after deploy")
    )

    removes = check(planned.plan, "data the restore removes")
    assert removes.result is CheckResult.WARNING
    assert "0 row(s) leave the live brain, 1000 changed row(s)" in removes.detail and "10 deleted" in removes.detail
    out = io.StringIO()
    render_plan(Console(file=out, width=200), planned.plan)
    assert (
        "0 added, 1000 changed, 10 deleted" in out.getvalue() and "episodes: 1000 changed, 10 deleted" in out.getvalue()
    )
    slack = str(plan_message(planned.plan, planned.run).blocks)
    assert "0 added, 1000 changed, 10 deleted" in slack and "episodes: 1000 changed, 10 deleted" in slack
    document = build(planned.run, [])
    assert "| episodes | 0 | 1000 | 10 |  |" in to_markdown(document)
    assert "|episodes|0|1000|10| |" in to_jira_wiki(document)


def test_a_forged_sidecar_does_not_drive_the_restore_decision(tmp_path: Path) -> None:
    """BUG (issue 12, 8): a sidecar claiming schema 1, image 2.3.1 and a date in 2099 beside a file at
    schema 2 told preflight that 2.3.1 reads schema 1 and chose that very file to restore from. Its
    facts are now ignored: nothing tells which schema 2.3.1 reads, so the plan asks."""
    world = brain_world(tmp_path)
    upgrade_brain(brain_of(world).path, schema=2)
    taken = snapshot(world, "2.4.0")
    sidecar = Path(f"{taken.path}.json")
    sidecar.write_text(
        json.dumps(
            {
                **json.loads(sidecar.read_text(encoding="utf-8")),
                "schema_version": 1,
                "image_tag": "2.3.1",
                "taken_at": "2099-01-01T00:00:00+00:00",
            }
        ),
        encoding="utf-8",
    )

    plan = plan_for(world)

    assert plan.brain is not None and plan.brain.target_reads is None and not plan.brain.restore
    assert taken.path.name not in plan.brain.target_reads_source
    assert plan.question and check(plan, "brain schema").result is CheckResult.ASK
