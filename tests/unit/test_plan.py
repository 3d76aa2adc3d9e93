"""Preflight looks and never touches: a failed check refuses, and the checks after it are 'not run'."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.rollbot import Rollbot
from bot.planning.plan import CHECKS, CheckResult, Plan, RollbackRequest, StepKind, make_plan
from bot.ports import ImageSource
from storage import Journal, RunStatus, connect

from .fakes import COMPOSE_TEXT, REPO, FakeHealth, World, make_world


def plan_for(world: World, version: str = "2.3.1", target: str = "engine", busy: list[str] | None = None) -> Plan:
    request = RollbackRequest(target, version, requester="cli:alice", reason="5xx after deploy")
    return make_plan(request, world.config, world.systems(), lambda _target: busy or [])


def results(plan: Plan) -> list[CheckResult]:
    return [check.result for check in plan.checks]


def assert_refused_at(plan: Plan, check: str) -> None:
    """Everything before `check` passed, `check` failed, everything after it was not run."""
    index = CHECKS.index(check)
    assert [c.name for c in plan.checks] == list(CHECKS)
    assert all(c.result in (CheckResult.PASSED, CheckResult.WARNING) for c in plan.checks[:index])
    assert plan.checks[index].result is CheckResult.FAILED
    assert results(plan)[index + 1 :] == [CheckResult.NOT_RUN] * (len(CHECKS) - index - 1)
    assert plan.refusal == plan.checks[index].detail
    assert not plan.approvable
    assert plan.steps == ()


def assert_untouched(world: World) -> None:
    assert world.compose_file.read_text() == COMPOSE_TEXT
    assert world.compose.running_image() == f"{REPO}:2.4.0"


# --- the happy plan ---------------------------------------------------------------------------------


def test_a_good_request_passes_every_check_and_lays_out_the_runbook(world: World) -> None:
    """Registry has 2.3.1, 2.4.0 runs: six steps in the runbook's order, nothing skipped."""
    plan = plan_for(world)
    assert results(plan) == [CheckResult.PASSED] * len(CHECKS)
    assert plan.approvable and plan.refusal is None
    assert [s.kind for s in plan.steps] == [
        StepKind.CAPTURE_LOGS,
        StepKind.SET_IMAGE_TAG,
        StepKind.PULL,
        StepKind.STOP,
        StepKind.START,
        StepKind.VERIFY_HEALTH,
    ]
    assert all(s.skip_reason is None for s in plan.steps)
    assert (plan.running_version, plan.current_image, plan.target_image) == ("2.4.0", f"{REPO}:2.4.0", f"{REPO}:2.3.1")
    assert (plan.container_id, plan.image_source, plan.environment) == ("c0ffee", ImageSource.REGISTRY, "test")
    assert "--timeout 7" in plan.steps[3].description
    assert "at most 20s" in plan.steps[5].description
    assert_untouched(world)


def test_plan_is_plain_data(world: World) -> None:
    """The journal stores the plan as JSON; front ends render it from there."""
    data = plan_for(world).to_dict()
    assert json.loads(json.dumps(data))["request"]["version"] == "2.3.1"


# --- refusals ---------------------------------------------------------------------------------------


def test_unknown_target(world: World) -> None:
    """The first check: nothing else is looked at, not even Docker."""
    plan = plan_for(world, target="engnie")
    assert_refused_at(plan, "target is configured")
    assert plan.refusal == "unknown target 'engnie'; configured targets: engine"
    assert world.docker.questions == []
    assert_untouched(world)


def test_unknown_target_is_shown_briefly(world: World) -> None:
    """A pasted paragraph is clipped in the refusal."""
    plan = plan_for(world, target="x" * 300)
    assert plan.refusal is not None and len(plan.refusal) < 120


@pytest.mark.parametrize("version", ["2.3.1;rm -rf /", "", "../x", "a" * 129, "2.3.1\n"])
def test_invalid_version(world: World, version: str) -> None:
    """A version that is not a Docker tag never reaches the compose file or Docker."""
    plan = plan_for(world, version=version)
    assert_refused_at(plan, "version is a Docker tag")
    assert "\n" not in (plan.refusal or "x\n")
    assert world.docker.questions == []
    assert_untouched(world)


def test_compose_file_without_the_service(tmp_path: Path) -> None:
    """A config pointing at the wrong file is a refusal naming the file, not a crash."""
    world = make_world(tmp_path, compose_text="services:\n  worker:\n    image: x:1\n")
    plan = plan_for(world)
    assert_refused_at(plan, "compose file names the service")
    assert str(world.compose_file) in (plan.refusal or "")


def test_run_in_progress(world: World) -> None:
    """One rollback of a target at a time; the refusal names the run to wait for."""
    plan = plan_for(world, busy=["20261126-030000-abcd"])
    assert_refused_at(plan, "no other run of this target")
    assert "20261126-030000-abcd" in (plan.refusal or "")
    assert world.docker.questions == []


def test_same_version_running(world: World) -> None:
    """Rolling back to what already runs would only restart it: refuse and say so."""
    plan = plan_for(world, version="2.4.0")
    assert_refused_at(plan, "not the version running now")
    assert "already runs 2.4.0" in (plan.refusal or "")
    assert plan.running_version == "2.4.0"


def test_the_container_decides_what_runs_not_the_file(world: World) -> None:
    """If someone already hand-switched the container to 2.3.1, that is what is running."""
    world.docker.run_container("c0ffee", f"{REPO}:2.3.1")
    plan = plan_for(world, version="2.3.1")
    assert_refused_at(plan, "not the version running now")


def test_image_nowhere_points_at_keep_images(tmp_path: Path) -> None:
    """The runbook keeps the last N images; the refusal says how to get the missing one back."""
    world = make_world(tmp_path, keep_images=7)
    plan = plan_for(world, version="1.9.0")
    assert_refused_at(plan, "image is available")
    refusal = plan.refusal or ""
    assert f"{REPO}:1.9.0" in refusal
    assert "last 7 versions" in refusal
    assert "git tag of 1.9.0" in refusal
    assert plan.image_source is ImageSource.NOWHERE
    assert_untouched(world)


def test_docker_errors_fail_the_check_they_happened_in(world: World) -> None:
    """An unreachable daemon is a refusal with the reason, at the check that asked."""
    world.docker.unreachable = "connection refused"
    plan = plan_for(world)
    assert_refused_at(plan, "running container")
    assert plan.refusal == "cannot reach the Docker daemon: connection refused"


# --- steps that are skipped -----------------------------------------------------------------------------


def test_image_only_on_this_host_skips_the_pull(world: World) -> None:
    """A registry that lost the image is fine if the host still has it: no pull."""
    world.docker.registry.discard(f"{REPO}:2.3.1")
    world.docker.host.add(f"{REPO}:2.3.1")
    plan = plan_for(world)
    assert plan.approvable
    assert plan.image_source is ImageSource.HOST
    pull = next(s for s in plan.steps if s.kind is StepKind.PULL)
    assert pull.skip_reason is not None and "already on this host" in pull.skip_reason
    assert [s.kind for s in plan.steps if s.skip_reason] == [StepKind.PULL]


def test_no_container_skips_capture_with_a_warning(world: World) -> None:
    """Nothing running means no logs to save: a warning, not a refusal; the file names the version."""
    world.compose.current = None
    plan = plan_for(world)
    check = plan.checks[CHECKS.index("running container")]
    assert check.result is CheckResult.WARNING
    assert "no logs to capture" in check.detail
    assert plan.approvable
    assert plan.running_version == "2.4.0"
    assert plan.container_id is None
    capture = plan.steps[0]
    assert capture.kind is StepKind.CAPTURE_LOGS and capture.skip_reason
    assert [s.kind for s in plan.steps if s.skip_reason] == [StepKind.CAPTURE_LOGS]


# --- through the core's front door ----------------------------------------------------------------------


def test_every_plan_is_journaled_refused_ones_included(world: World, journal: Journal) -> None:
    """`history` is the whole story: what was asked, what was refused and why."""
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    good = rollbot.plan(RollbackRequest("engine", "2.3.1", "slack:U1", "5xx"))
    bad = rollbot.plan(RollbackRequest("engine", "1.0.0", "slack:U2"))
    assert good.run.status is RunStatus.PLANNED
    assert [s.name for s in good.run.steps] == [
        "capture_logs",
        "set_image_tag",
        "pull",
        "stop",
        "start",
        "verify_health",
    ]
    assert (good.run.from_version, good.run.to_version, good.run.environment) == ("2.4.0", "2.3.1", "test")
    assert good.run.plan["target_image"] == f"{REPO}:2.3.1"
    assert bad.run.status is RunStatus.REFUSED
    assert bad.run.error == bad.plan.refusal
    assert [r.id for r in rollbot.history()] == [bad.run.id, good.run.id]


def test_a_running_run_blocks_the_next_plan(world: World, journal: Journal) -> None:
    """The in-progress check reads the journal: a started run refuses a second one."""
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    first = rollbot.plan(RollbackRequest("engine", "2.3.1", "slack:U1"))
    journal.start(first.run.id, "slack:U1", owner="elsewhere:1")
    second = rollbot.plan(RollbackRequest("engine", "2.2.0", "slack:U2"))
    assert second.run.status is RunStatus.REFUSED
    assert first.run.id in (second.plan.refusal or "")


def test_a_running_run_is_found_behind_many_newer_refusals(world: World, tmp_path: Path) -> None:
    """Fifty refused retries during a long rollback must not hide it from the in-progress check."""
    moments = iter(range(10_000))
    journal = Journal(
        connect(f"sqlite:///{tmp_path}/busy.db"),
        clock=lambda: datetime.fromtimestamp(1_800_000_000 + next(moments), UTC),
    )
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    first = rollbot.plan(RollbackRequest("engine", "2.3.1", "slack:U1"))
    journal.start(first.run.id, "slack:U1", owner="elsewhere:1")
    for attempt in range(50):
        assert rollbot.plan(RollbackRequest("engine", f"bad;{attempt}", "slack:U2")).run.status is RunStatus.REFUSED
    assert rollbot.runs_in_progress("engine") == [first.run.id]
    late = rollbot.plan(RollbackRequest("engine", "2.2.0", "slack:U3"))
    assert late.run.status is RunStatus.REFUSED
