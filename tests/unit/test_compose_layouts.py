"""Plans and runs on the layouts operators really have: an override that sets the image, a tag in
`.env`, several containers, a container not started from the files as they are now."""

from __future__ import annotations

from pathlib import Path

from bot.planning.plan import CheckResult, RollbackRequest, StepKind, make_plan
from bot.running.runner import Runner
from storage import Journal, RunStatus
from storage.repository import NewRun

from .fakes import REPO, FakeHealth, World

OVERRIDE = f"# this host\nservices:\n  engine:\n    image: {REPO}:2.4.0  # pinned here\n    ports: ['8080:8080']\n"


def with_override(world: World, text: str = OVERRIDE) -> Path:
    override = world.compose_file.with_name("docker-compose.override.yml")
    override.write_text(text)
    world.compose.files.append(override)
    return override


def plan_for(world: World):  # type: ignore[no-untyped-def]
    return make_plan(RollbackRequest("engine", "2.3.1", "cli:alice", "5xx"), world.config, world.systems())


def check(plan, name: str):  # type: ignore[no-untyped-def]
    [found] = [c for c in plan.checks if c.name == name]
    return found


def run(world: World, journal: Journal):  # type: ignore[no-untyped-def]
    plan = plan_for(world)
    assert plan.approvable, plan.refusal
    record = NewRun(
        target="engine",
        to_version="2.3.1",
        requester="cli:alice",
        environment=plan.environment,
        from_version=plan.running_version,
        steps=[(s.kind.value, s.description) for s in plan.steps],
        plan=plan.to_dict(),
    )
    run_id = journal.record_plan(record, actor="cli:alice").id
    runner = Runner(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}), "cli:alice", "h:1")
    return runner.execute(run_id, plan)


def test_the_override_that_sets_the_image_is_the_file_edited(world: World, journal: Journal) -> None:
    base = world.compose_file.read_text()
    override = with_override(world)
    plan = plan_for(world)
    assert plan.image_file == str(override)
    [edit_step] = [s for s in plan.steps if s.kind is StepKind.SET_IMAGE_TAG]
    assert "docker-compose.override.yml" in edit_step.description

    done = run(world, journal)

    assert done.status is RunStatus.SUCCEEDED
    assert world.compose.running_image() == f"{REPO}:2.3.1"
    assert override.read_text() == OVERRIDE.replace(":2.4.0", ":2.3.1")
    assert world.compose_file.read_text() == base


def test_a_failure_before_the_stop_puts_the_edited_override_back(world: World, journal: Journal) -> None:
    base = world.compose_file.read_text()
    override = with_override(world)
    world.compose.failures["pull"] = "docker compose pull engine exited 1: registry down"

    done = run(world, journal)

    assert done.status is RunStatus.FAILED
    assert override.read_text() == OVERRIDE, "the file that was edited is the one put back"
    assert world.compose_file.read_text() == base
    steps = {step.name: step for step in done.steps}
    assert Path(steps["set_image_tag"].detail["backup"]).name == "docker-compose.override.yml.before"


def test_a_tag_in_env_is_planned_and_switched_there(world: World, journal: Journal) -> None:
    text = world.compose_file.read_text().replace(f"{REPO}:2.4.0", f"{REPO}:${{ENGINE_TAG}}")
    world.compose_file.write_text(text)
    env = world.compose_file.with_name(".env")
    env.write_text("# owners\nENGINE_TAG=2.4.0\n")
    plan = plan_for(world)
    assert (plan.image_file, plan.image_variable) == (str(env), "ENGINE_TAG")

    done = run(world, journal)

    assert done.status is RunStatus.SUCCEEDED
    assert env.read_text() == "# owners\nENGINE_TAG=2.3.1\n"
    assert world.compose_file.read_text() == text
    assert world.compose.running_image() == f"{REPO}:2.3.1"


def test_a_tag_rollbot_cannot_edit_refuses_the_plan_and_touches_nothing(world: World) -> None:
    text = world.compose_file.read_text().replace(f"{REPO}:2.4.0", f"{REPO}:${{ENGINE_TAG}}")
    world.compose_file.write_text(text)
    world.compose_file.with_name(".env").write_text("ENGINE_TAG=2.4.0\nENGINE_TAG=2.4.0\n")
    plan = plan_for(world)
    assert check(plan, "compose file names the service").result is CheckResult.FAILED
    assert "ENGINE_TAG" in (plan.refusal or "") and not plan.approvable


def test_a_container_not_started_from_these_files_is_a_warning(world: World) -> None:
    assert check(plan_for(world), "container started from these files").result is CheckResult.PASSED
    world.compose_file.write_text(world.compose_file.read_text().replace("restart: unless-stopped", "restart: always"))
    plan = plan_for(world)
    hashed = check(plan, "container started from these files")
    assert hashed.result is CheckResult.WARNING and "config hash" in hashed.detail
    assert plan.approvable


def test_logs_of_every_container_are_captured_under_the_cap(tmp_path: Path, journal: Journal) -> None:
    from .fakes import make_world

    world = make_world(tmp_path, log_cap_mb=0.001)  # 1048 bytes
    world.docker.run_container("older", f"{REPO}:2.4.0", name="demo-engine-2")
    world.compose.scaled.append("older")
    world.docker.logs["c0ffee"] = b"".join(f"new {i:03d} {'x' * 40}\n".encode() for i in range(100))
    world.docker.logs["older"] = b"old 0\nold last\n"
    plan = plan_for(world)
    assert plan.container_ids == ("c0ffee", "older")

    done = run(world, journal)

    steps = {step.name: step for step in done.steps}
    text = Path(steps["capture_logs"].detail["log_file"]).read_text()
    assert text.startswith("===== demo-engine-1 (c0ffee) =====\nnew 000 ")
    assert text.rstrip().endswith("===== demo-engine-2 (older) =====\nold 0\nold last")
    assert "----- rollbot cut" in text
    assert steps["capture_logs"].detail["containers"] == 2


def test_advice_after_a_failure_runs_compose_as_the_operator_does(world: World, journal: Journal) -> None:
    """`docker compose -f docker-compose.yml up` would drop the override: the advice never says it."""
    with_override(world)
    world.compose.failures["up"] = "docker compose up --detach engine exited 1: port is already allocated"

    done = run(world, journal)

    assert done.status is RunStatus.FAILED
    assert f"cd {world.compose_file.parent} && docker compose up -d engine" in (done.next_action or "")
    assert " -f " not in (done.next_action or "")
