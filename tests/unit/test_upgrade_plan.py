"""Upgrades planned and run with the fakes: direction, known-bad refusals, the pre-upgrade snapshot,
and the rollback an upgrade that failed its health check is offered."""

from __future__ import annotations

import json
from pathlib import Path

from bot.core.rollbot import Rollbot
from bot.planning.direction import DIRECTION_CHECK
from bot.planning.plan import CHECKS, CheckResult, Plan, RollbackRequest, StepKind, make_plan
from bot.planning.upgrade_checks import KNOWN_BAD_CHECK
from storage import Journal, RunKind, RunStatus
from storage.repository import NewRun

from .fakes import REPO, FakeHealth, World, brain_config, make_brain, make_world

UPGRADE_STEPS = [
    StepKind.CAPTURE_LOGS,
    StepKind.SET_IMAGE_TAG,
    StepKind.PULL,
    StepKind.SNAPSHOT_BRAIN,
    StepKind.STOP,
    StepKind.START,
    StepKind.VERIFY_HEALTH,
]


def brain_world(tmp_path: Path) -> World:
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    world = make_world(tmp_path, brain=brain)
    world.docker.registry.add(f"{REPO}:2.5.0")
    return world


def plan(world: World, version: str, kind: RunKind = RunKind.ROLLBACK, journal: Journal | None = None) -> Plan:
    request = RollbackRequest("engine", version, "cli:alice", "release", kind=kind)
    if journal is None:
        return make_plan(request, world.config, world.systems())
    return make_plan(request, world.config, world.systems(), known_bad=journal.known_bad)


def check(plan: Plan, name: str) -> tuple[CheckResult, str]:
    [found] = [c for c in plan.checks if c.name == name]
    return found.result, found.detail


def test_an_upgrade_keeps_the_brain_and_snapshots_it_just_before_the_stop(tmp_path: Path) -> None:
    planned = plan(brain_world(tmp_path), "2.5.0", RunKind.UPGRADE)
    assert planned.approvable and planned.kind is RunKind.UPGRADE and not planned.rolls_forward
    assert [step.kind for step in planned.steps] == UPGRADE_STEPS
    assert not planned.restores_brain
    assert check(planned, DIRECTION_CHECK) == (CheckResult.PASSED, "upgrade: 2.4.0 → 2.5.0")
    assert "taken just before the stop" in check(planned, "brain schema")[1]
    assert Plan.from_dict(json.loads(json.dumps(planned.to_dict()))).kind is RunKind.UPGRADE


def test_a_rollback_to_a_newer_version_is_planned_as_an_upgrade(tmp_path: Path) -> None:
    planned = plan(brain_world(tmp_path), "2.5.0")
    assert planned.kind is RunKind.UPGRADE and planned.rolls_forward
    assert check(planned, DIRECTION_CHECK)[1].startswith("rolling forward: 2.5.0 is newer than the running 2.4.0")
    assert StepKind.SNAPSHOT_BRAIN in [step.kind for step in planned.steps]


def test_an_upgrade_to_an_older_version_is_refused_at_direction(tmp_path: Path) -> None:
    planned = plan(brain_world(tmp_path), "2.3.1", RunKind.UPGRADE)
    names = [c.name for c in planned.checks]
    assert names[: len(CHECKS)] == list(CHECKS)
    assert check(planned, DIRECTION_CHECK)[0] is CheckResult.FAILED
    assert "rollbot rollback TARGET 2.3.1" in (planned.refusal or "") and planned.steps == ()


def test_a_known_bad_version_is_refused_with_its_run_until_cleared(tmp_path: Path, journal: Journal) -> None:
    world = brain_world(tmp_path)
    rolled_back = journal.record_plan(NewRun("engine", "2.4.0", "cli:bob", [], "test", "2.5.0"), actor="cli:bob")
    journal.mark_known_bad("engine", "2.5.0", rolled_back.id, "5xx after deploy", "rollbot")
    for kind in (RunKind.UPGRADE, RunKind.ROLLBACK):
        refused = plan(world, "2.5.0", kind, journal)
        result, detail = check(refused, KNOWN_BAD_CHECK)
        assert result is CheckResult.FAILED and refused.refusal == detail
        assert detail.startswith(f"root cause first: 2.5.0 is known-bad: rolled back by run {rolled_back.id} at ")
        assert "rollbot clear engine 2.5.0 --reason TEXT" in detail
    journal.clear_known_bad("engine", "2.5.0", "cli:carol", "fixed")
    assert plan(world, "2.5.0", RunKind.UPGRADE, journal).approvable


def test_a_failed_upgrade_leaves_its_snapshot_and_offers_the_rollback_back(tmp_path: Path, journal: Journal) -> None:
    world = brain_world(tmp_path)
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.4.0"}))
    planned = rollbot.plan(RollbackRequest("engine", "2.5.0", "cli:alice", "release", kind=RunKind.UPGRADE))
    run = rollbot.execute(planned, "cli:alice")

    assert run.kind == RunKind.UPGRADE and run.status is RunStatus.FAILED and run.current_step == "verify_health"
    snapshot_step = next(step for step in run.steps if step.name == StepKind.SNAPSHOT_BRAIN)
    sidecar = json.loads(Path(snapshot_step.detail["snapshot"] + ".json").read_text())
    assert (sidecar["image_tag"], sidecar["upgrade_run"], sidecar["upgrade_to"]) == ("2.4.0", run.id, "2.5.0")
    assert snapshot_step.detail["healthy_before"] is True
    start = next(step for step in run.steps if step.name == StepKind.START)
    assert start.detail["started_at"]
    assert rollbot.tickets is None and journal.known_bad_versions() == []  # left running: not rolled back yet

    fallback = rollbot.fallback_for(run)
    assert fallback is not None and fallback.plan.approvable
    assert fallback.plan.kind is RunKind.ROLLBACK and fallback.plan.request.version == "2.4.0"
    assert fallback.run.status is RunStatus.PLANNED and run.id in fallback.run.reason

    rolled = rollbot.execute(fallback, "cli:alice")
    assert rolled.status is RunStatus.SUCCEEDED
    [mark] = journal.known_bad_versions("engine")
    assert (mark.version, mark.run_id) == ("2.5.0", rolled.id)
    assert rollbot.fallback_for(rolled) is None


def test_the_version_healthy_before_an_upgrade_is_the_previous_good_one(tmp_path: Path, journal: Journal) -> None:
    world = brain_world(tmp_path)
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.4.0"}))
    upgrade = rollbot.plan(RollbackRequest("engine", "2.5.0", "cli:alice", "", kind=RunKind.UPGRADE))
    rollbot.execute(upgrade, "cli:alice")
    chosen = rollbot.plan_previous_good(RollbackRequest("engine", "", "cli:alice", "5xx"))
    assert chosen.plan.request.version == "2.4.0" and chosen.plan.kind is RunKind.ROLLBACK


def test_a_drill_may_deploy_a_known_bad_tag_on_purpose(tmp_path: Path, journal: Journal) -> None:
    world = brain_world(tmp_path)
    rolled_back = journal.record_plan(NewRun("engine", "2.4.0", "cli:bob", [], "test", "2.5.0"), actor="cli:bob")
    journal.mark_known_bad("engine", "2.5.0", rolled_back.id, "", "rollbot")
    request = RollbackRequest("engine", "2.5.0", "drill", "drill: deliberately broken upgrade", practice=True)
    planned = make_plan(request, world.config, world.systems(), known_bad=journal.known_bad)
    assert planned.approvable and check(planned, KNOWN_BAD_CHECK)[0] is CheckResult.PASSED


def test_without_a_brain_the_version_an_upgrade_replaced_healthy_is_the_previous_good_one(
    tmp_path: Path, journal: Journal
) -> None:
    world = make_world(tmp_path)
    world.docker.registry.add(f"{REPO}:2.5.0")
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.4.0"}))
    upgrade = rollbot.plan(RollbackRequest("engine", "2.5.0", "cli:alice", "", kind=RunKind.UPGRADE))
    assert upgrade.plan.judgement is not None and upgrade.plan.steps[3].kind != StepKind.SNAPSHOT_BRAIN
    rollbot.execute(upgrade, "cli:alice")
    chosen = rollbot.plan_previous_good(RollbackRequest("engine", "", "cli:alice", "5xx"))
    assert chosen.plan.request.version == "2.4.0"
    [picked] = [c for c in chosen.plan.checks if c.name == "version chosen by rollbot"]
    assert picked.result is CheckResult.PASSED and f"healthy when upgrade run {upgrade.run.id} began" in picked.detail
