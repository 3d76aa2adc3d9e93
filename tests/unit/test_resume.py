"""Resuming and aborting a run whose process died, on real files with a fake Docker host.

A process death is simulated by an exception no handler in the runner catches (`Died`), raised
either right after a step's start is journaled (before its work) or right after its work is done
(before its end is journaled): the two moments a SIGKILL can leave a step. Then the run is marked
interrupted as the next start would, and a new runner takes it up. What is checked is what a
person relies on: the service ends where the plan said, the brain in place is whole and the
original is kept, and the journal tells the whole story.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from bot.brain.swap import forensic_dir
from bot.core.outcomes import Recovery
from bot.core.rollbot import Rollbot
from bot.planning.plan import Plan, StepKind
from bot.running.runner import Runner
from storage import EventView, Journal, RunStatus, StepStatus

from .fakes import COMPOSE_TEXT, REPO, FakeHealth, brain_contents
from .test_brain_runner import ACTOR, RESTORE_STEPS, TARGET_IMAGE, Restore, Ticks

NEW_OWNER = "testhost:2"


class Died(BaseException):
    """The process died here: nothing after this line of the runner ran, nothing was journaled."""


class DiesAfterWork(Runner):
    """A runner whose process dies once the work of one step is done, before its end is journaled."""

    def __init__(self, *args: Any, dies_after: StepKind, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dies_after = dies_after

    def _do(self, kind: StepKind, state: Any) -> dict[str, Any]:
        detail = super()._do(kind, state)
        if kind is self._dies_after:
            raise Died(kind)
        return detail


def dies_when_started(step: str):  # type: ignore[no-untyped-def]
    def sink(event: EventView) -> None:
        if event.kind == "step.started" and event.details["step"] == step:
            raise Died(step)

    return sink


def runner(scene: Restore, journal: Journal, owner: str, cls: type[Runner] = Runner, **kwargs: Any) -> Runner:
    health = FakeHealth(scene.world.compose, {"2.3.1"})
    return cls(scene.world.config, journal, scene.world.systems(), health, ACTOR, owner, clock=Ticks(), **kwargs)


def die(scene: Restore, journal: Journal, step: str, after_work: bool) -> tuple[str, Plan]:
    run_id, plan = scene.plan(journal)
    if after_work:
        doomed = runner(scene, journal, "testhost:1", DiesAfterWork, dies_after=StepKind(step))
        with pytest.raises(Died):
            doomed.execute(run_id, plan)
    else:
        with pytest.raises(Died):
            runner(scene, journal, "testhost:1").execute(run_id, plan, dies_when_started(step))
    [interrupted] = journal.mark_interrupted(lambda owner: False, actor="rollbot@next-start")
    assert interrupted.id == run_id and interrupted.current_step == step
    return run_id, plan


@pytest.mark.parametrize("after_work", [False, True], ids=["before-its-work", "after-its-work"])
@pytest.mark.parametrize("step", RESTORE_STEPS)
def test_resume_after_a_death_at_any_step_ends_like_a_run_that_never_died(
    tmp_path: Path, journal: Journal, step: str, after_work: bool
) -> None:
    scene = Restore(tmp_path)
    original = brain_contents(scene.brain.path)
    original_inode = scene.brain.path.stat().st_ino
    run_id, _ = die(scene, journal, step, after_work)

    run = runner(scene, journal, NEW_OWNER).resume(journal.run(run_id), by="U0APPROVER")

    assert run.status is RunStatus.SUCCEEDED, run.error
    assert [s.status for s in run.steps] == [StepStatus.SUCCEEDED] * len(RESTORE_STEPS)
    assert run.owner == NEW_OWNER
    assert scene.world.compose.running_image() == TARGET_IMAGE
    assert scene.world.compose_file.read_text() == COMPOSE_TEXT.replace(f"{REPO}:2.4.0", TARGET_IMAGE)
    assert brain_contents(scene.brain.path) == brain_contents(scene.snapshot.path)
    forensic = forensic_dir(scene.brain.path, run_id) / scene.brain.path.name
    assert forensic.stat().st_ino == original_inode and brain_contents(forensic) == original
    assert scene.staged_files() == []
    assert run.summary["brain"] == f"restored from {scene.snapshot.path.name}"
    resumed = [e for e in run.events if e.kind == "run.resumed"]
    assert [(e.details["by"], e.details["step"]) for e in resumed] == [("U0APPROVER", step)]
    started = [e.details["step"] for e in run.events if e.kind == "step.started"]
    position = RESTORE_STEPS.index(step)
    assert started == RESTORE_STEPS[: position + 1] + RESTORE_STEPS[position:], "only the step in flight runs twice"


@pytest.mark.parametrize("step", ["capture_logs", "stage_snapshot", "set_image_tag", "pull"])
def test_abort_before_the_drain_stop_leaves_everything_as_it_was(tmp_path: Path, journal: Journal, step: str) -> None:
    scene = Restore(tmp_path)
    original = brain_contents(scene.brain.path)
    container = scene.world.compose.current
    run_id, _ = die(scene, journal, step, after_work=True)

    run = runner(scene, journal, NEW_OWNER).abort(journal.run(run_id), by="U0APPROVER")

    assert run.status is RunStatus.ABORTED
    assert run.error == f"aborted by U0APPROVER at step {step}"
    assert "nothing was changed" in run.summary["service_state"]
    assert scene.world.compose_file.read_text() == COMPOSE_TEXT, "the compose file is back, byte for byte"
    assert scene.world.compose.current == container and scene.world.compose.running_image() == f"{REPO}:2.4.0"
    assert brain_contents(scene.brain.path) == original
    assert scene.staged_files() == []


def test_abort_after_the_swap_leaves_the_service_alone_and_says_which_brain_is_in_place(
    tmp_path: Path, journal: Journal
) -> None:
    scene = Restore(tmp_path)
    run_id, _ = die(scene, journal, "swap_brain", after_work=True)

    run = runner(scene, journal, NEW_OWNER).abort(journal.run(run_id), by="U0APPROVER")

    assert run.status is RunStatus.ABORTED
    assert scene.world.compose.running_image() is None, "stopped it was, stopped it stays"
    assert brain_contents(scene.brain.path) == brain_contents(scene.snapshot.path)
    where = run.summary["service_state"]
    assert "the restored snapshot is at" in where and str(forensic_dir(scene.brain.path, run_id)) in where
    assert run.next_action and "up -d" in run.next_action


def test_a_second_resume_or_a_resume_of_a_finished_run_is_refused(tmp_path: Path, journal: Journal) -> None:
    scene = Restore(tmp_path)
    run_id, _ = die(scene, journal, "stop", after_work=False)
    rollbot = Rollbot(scene.world.config, journal, scene.world.systems(), FakeHealth(scene.world.compose, {"2.3.1"}))

    outcome = rollbot.take_up(run_id, "U0APPROVER", Recovery.RESUME)
    again = rollbot.take_up(run_id, "U0APPROVER", Recovery.ABORT)

    assert outcome.run is not None and outcome.run.status is RunStatus.SUCCEEDED
    assert again.refusal == f"run {run_id} is succeeded, not interrupted; nothing was done"
    assert rollbot.take_up("20990101-000000-abcdef", "U0APPROVER", Recovery.RESUME).refusal == (
        "run '20990101-000000-abcdef' is not known to rollbot; nothing was done"
    )


def test_only_an_approver_may_resume_from_slack(tmp_path: Path, journal: Journal) -> None:
    scene = Restore(tmp_path)
    run_id, _ = die(scene, journal, "stop", after_work=False)
    rollbot = Rollbot(scene.world.config, journal, scene.world.systems(), FakeHealth(scene.world.compose, {"2.3.1"}))

    outcome = rollbot.take_up(run_id, "U0SOMEONE", Recovery.RESUME, members_of=lambda group: set())

    assert outcome.refusal == "only an approver of engine can resume an interrupted run"
    assert journal.run(run_id).status is RunStatus.INTERRUPTED


def test_a_resume_clicked_on_another_message_is_refused(tmp_path: Path, journal: Journal) -> None:
    """Resume and Abort act only on the run whose interruption report they sit on."""
    scene = Restore(tmp_path)
    run_id, _ = die(scene, journal, "stop", after_work=False)
    rollbot = Rollbot(scene.world.config, journal, scene.world.systems(), FakeHealth(scene.world.compose, {"2.3.1"}))
    rollbot.remember(run_id, interruption_message={"channel": "C0INCIDENT", "ts": "1700000000.000500"})

    elsewhere = rollbot.take_up(
        run_id, "U0APPROVER", Recovery.RESUME, seen_on={"channel": "C0INCIDENT", "ts": "1700000000.000900"}
    )
    assert elsewhere.refusal == (
        f"run {run_id} (engine → 2.3.1) is not the interrupted run reported on this message; nothing was done"
    )
    assert journal.run(run_id).status is RunStatus.INTERRUPTED

    on_its_report = rollbot.take_up(
        run_id, "U0APPROVER", Recovery.RESUME, seen_on={"channel": "C0INCIDENT", "ts": "1700000000.000500"}
    )
    assert on_its_report.run is not None and on_its_report.run.status is RunStatus.SUCCEEDED


def test_a_stop_request_ends_the_run_at_the_next_step_boundary(tmp_path: Path, journal: Journal) -> None:
    """SIGTERM: the step in flight finishes, the run is journaled interrupted before the next, and
    the next start can resume it to success."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    stopping = threading.Event()

    def stop_during_pull(event: EventView) -> None:
        if event.kind == "step.started" and event.details["step"] == "pull":
            stopping.set()

    run = runner(scene, journal, "testhost:1", stopping=stopping).execute(run_id, plan, stop_during_pull)

    assert run.status is RunStatus.INTERRUPTED
    assert run.error == "rollbot was shut down before step stop"
    assert {s.name: s.status for s in run.steps}["pull"] is StepStatus.SUCCEEDED
    assert {s.name: s.status for s in run.steps}["stop"] is StepStatus.PENDING
    assert scene.world.compose.running_image() == f"{REPO}:2.4.0", "the service was not stopped"
    resumed = runner(scene, journal, NEW_OWNER).resume(run, by="U0APPROVER")
    assert resumed.status is RunStatus.SUCCEEDED and scene.world.compose.running_image() == TARGET_IMAGE


def test_a_runner_that_lost_its_run_stops_before_the_next_step(tmp_path: Path, journal: Journal) -> None:
    """A process thought dead (its heartbeat stopped) comes back after another took the run over: its
    next step start is refused by the journal and it touches nothing more."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)

    def taken_over_during_pull(event: EventView) -> None:
        if event.kind == "step.finished" and event.details["step"] == "pull":
            journal.mark_interrupted(lambda owner: False, actor="rollbot@other-replica")

    run = runner(scene, journal, "testhost:1").execute(run_id, plan, taken_over_during_pull)

    assert run.status is RunStatus.INTERRUPTED
    assert {s.name: s.status for s in run.steps}["stop"] is StepStatus.PENDING
    assert scene.world.compose.running_image() == f"{REPO}:2.4.0"
