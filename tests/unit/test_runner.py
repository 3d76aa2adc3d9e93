"""The runner against a fake host and a real journal and compose file: each step journaled, failures explained."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

import pytest

from bot.planning.plan import Plan, RollbackRequest, make_plan
from bot.running.runner import ProgressSink, Runner
from storage import EventView, Journal, RunStatus, RunView, StepStatus
from storage.repository import NewRun

from .fakes import COMPOSE_TEXT, REPO, FakeHealth, World

ACTOR = "cli:alice"
ALL_STEPS = ["capture_logs", "set_image_tag", "pull", "stop", "start", "verify_health"]  # an image-only plan


class Ticks:
    """A monotonic clock for the runner that moves 1.5 s per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


def planned(world: World, journal: Journal, version: str = "2.3.1") -> tuple[str, Plan]:
    plan = make_plan(RollbackRequest("engine", version, ACTOR, "5xx after deploy"), world.config, world.systems())
    assert plan.approvable, plan.refusal
    record = NewRun(
        target="engine",
        to_version=version,
        requester=ACTOR,
        environment=plan.environment,
        from_version=plan.running_version,
        steps=[(s.kind.value, s.description) for s in plan.steps],
        plan=plan.to_dict(),
    )
    return journal.record_plan(record, actor=ACTOR).id, plan


def execute(
    world: World,
    journal: Journal,
    healthy: set[str] | None = None,
    sink: ProgressSink | None = None,
    version: str = "2.3.1",
) -> RunView:
    run_id, plan = planned(world, journal, version)
    health = FakeHealth(world.compose, {"2.3.1", "2.2.0"} if healthy is None else healthy)
    runner = Runner(world.config, journal, world.systems(), health, ACTOR, owner="testhost:1", clock=Ticks())
    return runner.execute(run_id, plan, sink)


def step_statuses(run: RunView) -> dict[str, StepStatus]:
    return {step.name: step.status for step in run.steps}


def changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


# --- success ----------------------------------------------------------------------------------------------


def test_success_journals_every_step_and_switches_the_service(world: World, journal: Journal) -> None:
    """The runbook end to end: logs saved, one line of the file changed, 2.3.1 running and healthy."""
    run = execute(world, journal)

    assert run.status is RunStatus.SUCCEEDED
    assert step_statuses(run) == dict.fromkeys(ALL_STEPS, StepStatus.SUCCEEDED)
    assert run.owner == "testhost:1"
    assert world.compose.running_image() == f"{REPO}:2.3.1"
    assert world.compose.drain_timeouts == [7]
    assert changed_lines(COMPOSE_TEXT, world.compose_file.read_text()) == [
        f"-    image: {REPO}:2.4.0   # bumped by CI\n",
        f"+    image: {REPO}:2.3.1   # bumped by CI\n",
    ]

    steps = {step.name: step for step in run.steps}
    log_file = Path(steps["capture_logs"].detail["log_file"])
    assert log_file == world.config.evidence_dir / run.id / "engine-2.4.0.log"
    assert log_file.read_bytes() == world.docker.logs["c0ffee"]
    assert steps["capture_logs"].detail["bytes"] == len(world.docker.logs["c0ffee"])
    assert Path(steps["set_image_tag"].detail["backup"]).read_text() == COMPOSE_TEXT
    assert steps["set_image_tag"].detail["to"] == f"{REPO}:2.3.1"
    assert steps["verify_health"].detail["ok"] is True

    assert run.summary["healthy"] is True
    assert (run.summary["previous_version"], run.summary["new_version"]) == ("2.4.0", "2.3.1")
    assert run.summary["log_file"] == str(log_file)
    assert run.summary["downtime_seconds"] is not None and run.summary["downtime_seconds"] > 0
    assert run.error is None and run.next_action is None
    kinds = [event.kind for event in run.events]
    assert kinds == ["run.planned", "run.started"] + ["step.started", "step.finished"] * 6 + ["run.finished"]


def test_pull_is_skipped_when_the_image_is_only_on_this_host(world: World, journal: Journal) -> None:
    """The registry lost 2.3.1 but the host has it: the run succeeds without pulling."""
    world.docker.registry.discard(f"{REPO}:2.3.1")
    world.docker.host.add(f"{REPO}:2.3.1")
    run = execute(world, journal)
    assert run.status is RunStatus.SUCCEEDED
    assert step_statuses(run)["pull"] is StepStatus.SKIPPED
    pull = next(step for step in run.steps if step.name == "pull")
    assert "already on this host" in pull.detail["skipped"]
    assert world.compose.running_image() == f"{REPO}:2.3.1"


def test_no_container_means_no_capture_but_the_rollback_runs(world: World, journal: Journal) -> None:
    """A stopped-and-removed service is still rolled back; the journal says why no logs were saved."""
    world.docker.containers.clear()
    world.compose.current = None
    run = execute(world, journal)
    assert run.status is RunStatus.SUCCEEDED
    assert step_statuses(run)["capture_logs"] is StepStatus.SKIPPED
    assert run.summary["log_file"] is None
    assert world.compose.running_image() == f"{REPO}:2.3.1"


# --- failures before the drain-stop put everything back --------------------------------------------------


def test_pull_failure_restores_the_compose_file(world: World, journal: Journal) -> None:
    """The image vanished from the registry after planning: nothing changed, and the run says so."""
    run_id, plan = planned(world, journal)
    world.docker.registry.discard(f"{REPO}:2.3.1")
    runner = Runner(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}), ACTOR, "h:1")
    run = runner.execute(run_id, plan)

    assert run.status is RunStatus.FAILED
    assert world.compose_file.read_bytes() == COMPOSE_TEXT.encode()
    assert world.compose.running_image() == f"{REPO}:2.4.0", "the old version never stopped"
    assert world.compose.drain_timeouts == []
    assert step_statuses(run) == {
        "capture_logs": StepStatus.SUCCEEDED,
        "set_image_tag": StepStatus.SUCCEEDED,
        "pull": StepStatus.FAILED,
        "stop": StepStatus.PENDING,
        "start": StepStatus.PENDING,
        "verify_health": StepStatus.PENDING,
    }
    assert run.error is not None and run.error.startswith("step pull failed: ")
    assert "manifest unknown" in run.error
    assert run.next_action == "fix the cause above, then run `rollbot rollback engine 2.3.1` again"
    assert run.summary["service_state"].startswith("nothing was changed: engine still runs 2.4.0")
    assert run.summary["failed_step"] == "pull"
    assert run.summary["healthy"] is False
    assert run.current_step == "pull"


def test_capture_failure_changes_nothing(world: World, journal: Journal) -> None:
    """Evidence first: if the logs cannot be saved, the compose file is never touched."""
    run_id, plan = planned(world, journal)
    del world.docker.containers["c0ffee"]
    runner = Runner(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}), ACTOR, "h:1")
    run = runner.execute(run_id, plan)
    assert run.status is RunStatus.FAILED
    assert step_statuses(run)["capture_logs"] is StepStatus.FAILED
    assert step_statuses(run)["set_image_tag"] is StepStatus.PENDING
    assert "logs cannot be captured" in (run.error or "")
    assert world.compose_file.read_bytes() == COMPOSE_TEXT.encode()
    assert run.summary["service_state"].startswith("nothing was changed")


def test_compose_file_edited_by_hand_since_planning(world: World, journal: Journal) -> None:
    """A file that can no longer be edited safely fails the tag step and is left as the person made it."""
    run_id, plan = planned(world, journal)
    hand_edited = COMPOSE_TEXT.replace(f"image: {REPO}:2.4.0", f"image: >-\n      {REPO}:2.4.0")
    world.compose_file.write_text(hand_edited)
    runner = Runner(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}), ACTOR, "h:1")
    run = runner.execute(run_id, plan)
    assert run.status is RunStatus.FAILED
    assert step_statuses(run)["set_image_tag"] is StepStatus.FAILED
    assert "edit the tag by hand" in (run.error or "")
    assert world.compose_file.read_text() == hand_edited
    assert world.compose.running_image() == f"{REPO}:2.4.0"


# --- failures after the drain-stop move forward and say where things are ----------------------------------


def test_health_failure_leaves_the_new_version_and_says_it_is_unhealthy(world: World, journal: Journal) -> None:
    """2.3.1 starts but /health never says ok: it is left running (2.4.0 was unhealthy too, and
    going back would only stop the service again), and the journal and the message say so."""
    run = execute(world, journal, healthy=set())
    assert run.status is RunStatus.FAILED
    assert step_statuses(run)["verify_health"] is StepStatus.FAILED
    assert run.summary["service_state"].startswith(
        "engine is now on 2.3.1 but unhealthy; it was left running: 2.4.0 was unhealthy too"
    )
    assert run.summary["after_failure"] == "left 2.3.1 running"
    assert world.compose.running_image() == f"{REPO}:2.3.1"
    assert f"{REPO}:2.3.1" in world.compose_file.read_text()
    assert "not healthy" in (run.error or "") and "http://127.0.0.1:8080/health" in (run.error or "")
    assert run.next_action is not None
    assert "logs engine" in run.next_action and "rollbot rollback engine VERSION" in run.next_action
    assert run.summary["health"].startswith("not healthy")
    assert [e.details["version"] for e in run.events if e.kind == "recovery.left_running"] == ["2.3.1"]


def test_stop_failure_says_the_old_version_may_still_run(world: World, journal: Journal) -> None:
    """A failed drain-stop is past the point of undo: the file names 2.3.1 and the journal says so."""
    world.compose.failures["stop"] = "docker compose stop engine exited 1: daemon busy"
    run = execute(world, journal)
    assert run.status is RunStatus.FAILED
    assert f"{REPO}:2.3.1" in world.compose_file.read_text()
    assert "drain-stop of engine failed" in run.summary["service_state"]
    assert run.next_action is not None and "up -d engine" in run.next_action
    assert "daemon busy" in (run.error or "")


def test_start_failure_puts_the_previous_version_back_and_starts_it(world: World, journal: Journal) -> None:
    """`up -d` of 2.3.1 failed: the compose file is put back to 2.4.0 and 2.4.0 started again,
    as it ran before the rollback; the journal has each action and the message says so."""
    before = world.compose_file.read_text()
    world.compose.failures["up"] = "docker compose up --detach engine exited 1: pull access denied"
    seen: list[EventView] = []

    def start_fails_once(event: EventView) -> None:
        seen.append(event)
        if event.kind == "step.finished" and event.outcome == "failed":
            world.compose.failures.pop("up")  # the previous image is on the host: it starts

    run = execute(world, journal, sink=start_fails_once)
    assert run.status is RunStatus.FAILED and step_statuses(run)["start"] is StepStatus.FAILED
    assert world.compose.running_image() == f"{REPO}:2.4.0"
    assert world.compose_file.read_text() == before, "the file is byte for byte as before the run"
    state = run.summary["service_state"]
    assert (
        state == "2.3.1 did not start, so engine is running 2.4.0 again (as before the rollback); "
        "the compose file names 2.4.0"
    )
    assert run.summary["after_failure"] == "started 2.4.0 again"
    assert run.next_action is not None and "rollbot rollback engine 2.3.1" in run.next_action
    kinds = [e.kind for e in run.events]
    assert (
        kinds.index("recovery.compose_put_back")
        < kinds.index("recovery.previous_started")
        < kinds.index("run.finished")
    )
    assert next(e for e in run.events if e.kind == "recovery.previous_started").details == {
        "version": "2.4.0",
        "running": True,
    }
    assert "recovery.previous_started" in [e.kind for e in seen], "the progress sink hears it too"


def test_when_the_previous_version_does_not_start_either_the_message_says_stopped(
    world: World, journal: Journal
) -> None:
    """Neither 2.3.1 nor 2.4.0 starts (the port is taken): the service is stopped, the file
    names 2.4.0 again, and the next command is the one that starts it."""
    world.compose.failures["up"] = "docker compose up --detach engine exited 1: port is already allocated"
    run = execute(world, journal)
    assert run.status is RunStatus.FAILED
    assert world.compose.running_image() is None
    assert f"{REPO}:2.4.0" in world.compose_file.read_text()
    assert run.summary["service_state"] == (
        "engine is stopped: 2.3.1 did not start, and starting 2.4.0 again failed too (docker compose up --detach "
        "engine exited 1: port is already allocated); the compose file names 2.4.0"
    )
    assert run.next_action is not None
    assert (
        f"cd {world.compose_file.parent} && docker compose up -d engine" in run.next_action
        and "start 2.4.0" in run.next_action
    )
    assert step_statuses(run)["verify_health"] is StepStatus.PENDING
    [failed] = [e for e in run.events if e.kind == "recovery.previous_start_failed"]
    assert "port is already allocated" in failed.details["error"]


def test_a_service_that_had_no_container_is_not_started_by_a_failure(world: World, journal: Journal) -> None:
    """Nothing ran before the rollback: a failed start leaves nothing running, as before."""
    world.compose.current = None
    world.docker.containers.clear()
    world.compose.failures["up"] = "docker compose up --detach engine exited 1: pull access denied"
    run = execute(world, journal)
    assert run.status is RunStatus.FAILED
    assert "is stopped: it did not start" in run.summary["service_state"]
    assert not [e for e in run.events if e.kind.startswith("recovery.")]


# --- progress and interruptions -------------------------------------------------------------------------


def test_progress_sink_sees_every_event_and_its_errors_never_fail_the_run(
    world: World, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack being down must not fail a rollback: the sink raises every time, the run succeeds."""
    seen: list[EventView] = []

    def broken_sink(event: EventView) -> None:
        seen.append(event)
        raise RuntimeError("chat.update: ratelimited")

    with caplog.at_level(logging.ERROR, logger="bot.running.runner"):
        run = execute(world, journal, sink=broken_sink)
    assert run.status is RunStatus.SUCCEEDED
    assert [e.kind for e in seen] == ["run.started"] + ["step.started", "step.finished"] * 6 + ["run.finished"]
    assert [e.id for e in seen] == [e.id for e in run.events[1:]]
    assert "progress sink failed" in caplog.text


def test_keyboard_interrupt_marks_the_run_interrupted_and_propagates(world: World, journal: Journal) -> None:
    """Ctrl-C during the drain-stop: the journal records where it stopped, then the interrupt goes on."""
    world.compose.interrupts.add("stop")
    run_id, plan = planned(world, journal)
    runner = Runner(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}), ACTOR, "h:1")
    with pytest.raises(KeyboardInterrupt):
        runner.execute(run_id, plan)

    run = journal.run(run_id)
    assert run.status is RunStatus.INTERRUPTED
    assert run.current_step == "stop"
    assert run.error == "interrupted during step stop"
    assert run.next_action is not None and "up -d engine" in run.next_action
    stop = next(step for step in run.steps if step.name == "stop")
    assert (stop.status, stop.error) == (StepStatus.FAILED, "interrupted by the operator")
    assert step_statuses(run)["start"] is StepStatus.PENDING
    assert run.events[-1].kind == "run.finished" and run.events[-1].outcome == "interrupted"


def test_a_plan_that_is_not_approvable_is_never_run(world: World, journal: Journal) -> None:
    """Only approved plans run; a refused plan reaching the runner is a programming error."""
    plan = make_plan(RollbackRequest("engine", "9.9.9", ACTOR), world.config, world.systems())
    assert not plan.approvable
    runner = Runner(world.config, journal, world.systems(), FakeHealth(world.compose, set()), ACTOR, "h:1")
    with pytest.raises(ValueError, match="not approvable"):
        runner.execute("no-such-run", plan)
    assert world.compose_file.read_text() == COMPOSE_TEXT
    assert journal.runs() == []
