"""A rollback with a brain restore, run by the real runner on real files with a fake Docker host.

Journal, compose file, brain and snapshots are real files in tmp_path; Docker, Compose and /health
are the fakes. What is checked is what a person relies on after the run: which brain is in place,
that the original is kept whole, and that the journal says so.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.brain.facts import sha256
from bot.brain.snapshots import Snapshot, take_snapshot
from bot.brain.swap import FORENSIC_FOLDER, forensic_dir, prepare_swap, stage, swap
from bot.config import BrainConfig
from bot.core.rollbot import Rollbot
from bot.planning.brain_plan import SCHEMA_LABEL
from bot.planning.plan import Plan, RollbackRequest, make_plan
from bot.running.runner import ProgressSink, Runner
from storage import EventView, Journal, RunStatus, RunView, StepStatus
from storage.repository import NewRun

from .fakes import (
    COMPOSE_TEXT,
    REPO,
    FakeHealth,
    World,
    brain_config,
    brain_contents,
    leave_wal,
    make_brain,
    make_world,
    upgrade_brain,
)

ACTOR = "cli:alice"
TARGET_IMAGE = f"{REPO}:2.3.1"
RESTORE_STEPS = [
    "capture_logs",
    "stage_snapshot",
    "set_image_tag",
    "pull",
    "stop",
    "swap_brain",
    "start",
    "verify_health",
]
DEAD_OWNER = f"{socket.gethostname()}:{2**22 + 12345}"  # above the largest pid Linux hands out
LATE_ROW = "INSERT INTO episodes (created_at, content) VALUES ('2026-11-26T05:00:00Z', 'written after the plan')"


class Ticks:
    """A monotonic clock for the runner that moves 1.5 s per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.5
        return self.now


class Restore:
    """The Engine on 2.4.0, whose migration moved the brain to schema 2 after a snapshot at schema 1."""

    def __init__(self, tmp_path: Path) -> None:
        self.brain: BrainConfig = brain_config(tmp_path)
        make_brain(self.brain.path, schema=1)
        self.world: World = make_world(tmp_path, brain=self.brain)
        self.snapshot: Snapshot = take_snapshot(self.brain, "2.3.1", now=datetime.now(UTC) - timedelta(hours=1))
        upgrade_brain(self.brain.path, schema=2, new_rows=2)
        self.world.docker.host.add(TARGET_IMAGE)
        self.world.docker.labels[TARGET_IMAGE] = {SCHEMA_LABEL: "1"}

    def plan(self, journal: Journal) -> tuple[str, Plan]:
        plan = make_plan(
            RollbackRequest("engine", "2.3.1", ACTOR, "5xx after deploy"), self.world.config, self.world.systems()
        )
        assert plan.approvable and plan.restores_brain, plan.refusal
        assert [s.kind.value for s in plan.steps] == RESTORE_STEPS
        record = NewRun(
            target="engine",
            to_version="2.3.1",
            requester=ACTOR,
            environment=plan.environment,
            from_version=plan.running_version,
            steps=[(s.kind.value, s.description) for s in plan.steps],
            plan=plan.to_dict(),
        )
        return journal.record_plan(record, actor=ACTOR).id, plan

    def run(
        self,
        journal: Journal,
        run_id: str,
        plan: Plan,
        healthy: set[str] | None = None,
        sink: ProgressSink | None = None,
    ) -> RunView:
        health = FakeHealth(self.world.compose, {"2.3.1"} if healthy is None else healthy)
        runner = Runner(
            self.world.config, journal, self.world.systems(), health, ACTOR, owner="testhost:1", clock=Ticks()
        )
        return runner.execute(run_id, plan, sink)

    def staged_files(self) -> list[Path]:
        return sorted(self.brain.path.parent.glob(f".{self.brain.path.name}.rollbot-staged-*"))


def statuses(run: RunView) -> dict[str, StepStatus]:
    return {step.name: step.status for step in run.steps}


# --- success ------------------------------------------------------------------------------------------


def test_restore_replaces_the_brain_and_keeps_the_original_as_forensic_copy(tmp_path: Path, journal: Journal) -> None:
    """The runbook with a brain restore: the snapshot is in place, 2.3.1 runs healthy, and the original
    brain — including rows still in its WAL at the stop — is the forensic copy named in the summary."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    original_inode = scene.brain.path.stat().st_ino
    original = brain_contents(scene.brain.path)

    run = scene.run(journal, run_id, plan)

    assert run.status is RunStatus.SUCCEEDED, run.error
    assert statuses(run) == dict.fromkeys(RESTORE_STEPS, StepStatus.SUCCEEDED)
    assert brain_contents(scene.brain.path) == brain_contents(scene.snapshot.path)
    assert scene.world.compose.running_image() == TARGET_IMAGE
    forensic = Path(run.summary["forensic_copy"])
    assert forensic == forensic_dir(scene.brain.path, run_id) / scene.brain.path.name
    assert forensic.stat().st_ino == original_inode and brain_contents(forensic) == original
    assert run.summary["brain"] == f"restored from {scene.snapshot.path.name}"
    assert run.summary["rows_rolled_back"] == 11
    assert "episodes: 2 row(s)" in run.summary["forensic_holds"] and "skills: 1 row(s)" in run.summary["forensic_holds"]
    assert scene.staged_files() == []
    assert sha256(scene.snapshot.path) == scene.snapshot.checksum, "the snapshot is still there, unchanged"

    [note] = [e for e in run.events if e.kind == "brain.swap"]
    assert note.details["original_inode"] == original_inode and note.details["brain"] == str(scene.brain.path)
    swap_step = next(s for s in run.steps if s.name == "swap_brain")
    assert swap_step.detail["forensic_dir"] == str(forensic.parent)
    stage_step = next(s for s in run.steps if s.name == "stage_snapshot")
    assert stage_step.detail["checksum"] == scene.snapshot.checksum


def test_rows_written_between_plan_and_stop_are_kept_and_counted(tmp_path: Path, journal: Journal) -> None:
    """The Engine keeps writing while the plan waits for approval: those rows are in the forensic copy.
    BUG: the summary's rows_rolled_back/forensic_holds are the plan-time loss report, so they understate
    what the restore actually rolled back (here 11 reported, 12 rolled back)."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    leave_wal(scene.brain.path, LATE_ROW)

    run = scene.run(journal, run_id, plan)

    assert run.status is RunStatus.SUCCEEDED, run.error
    forensic = brain_contents(Path(run.summary["forensic_copy"]))
    assert any(row[2] == "written after the plan" for row in forensic["episodes"])  # type: ignore[union-attr]
    assert run.summary["rows_rolled_back"] == 12
    assert "episodes: 3 row(s)" in run.summary["forensic_holds"]


# --- failure after the swap: the original goes back ----------------------------------------------------


@pytest.mark.parametrize("failing", ["verify_health", "start"])
def test_failure_after_the_swap_puts_the_original_brain_back_and_runs_the_previous_version(
    tmp_path: Path, journal: Journal, failing: str
) -> None:
    """2.3.1 does not come up: the original brain (same inode) goes back, the restored one is kept
    aside, and 2.4.0 runs again on it, degraded as it was before the rollback."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    original_inode = scene.brain.path.stat().st_ino
    original = brain_contents(scene.brain.path)
    compose_before = scene.world.compose_file.read_text()
    sink = None
    if failing == "start":
        scene.world.compose.failures["up"] = "docker compose up engine exited 1: image not found"

        def sink(event: EventView) -> None:
            if event.kind == "step.finished" and event.outcome == "failed":
                scene.world.compose.failures.pop("up", None)

    run = scene.run(journal, run_id, plan, healthy=set(), sink=sink)

    assert run.status is RunStatus.FAILED
    assert statuses(run)[failing] is StepStatus.FAILED
    assert statuses(run)["swap_brain"] is StepStatus.SUCCEEDED
    assert scene.brain.path.stat().st_ino == original_inode
    assert brain_contents(scene.brain.path) == original
    state = run.summary["service_state"]
    why = "2.3.1 did not start" if failing == "start" else "2.3.1 did not become healthy"
    assert state.startswith(
        f"{why}, so engine is running 2.4.0 again (degraded, as before the rollback); "
        f"the original brain is back at {scene.brain.path}"
    ), state
    assert state.endswith("the compose file names 2.4.0")
    assert run.summary["brain"] == "not restored" and run.summary["after_failure"] == "started 2.4.0 again"
    assert scene.world.compose.running_image() == f"{REPO}:2.4.0", "2.4.0 runs on its own brain again"
    assert scene.world.compose_file.read_text() == compose_before
    aside = forensic_dir(scene.brain.path, run_id) / f"restored-then-replaced-{scene.brain.path.name}"
    assert brain_contents(aside) == brain_contents(scene.snapshot.path)
    assert scene.staged_files() == []
    kinds = [e.kind for e in run.events]
    assert (
        kinds.index("brain.put_back")
        < kinds.index("recovery.compose_put_back")
        < kinds.index("recovery.previous_started")
    )


def test_when_the_previous_version_cannot_start_the_brain_is_back_and_the_service_stopped(
    tmp_path: Path, journal: Journal
) -> None:
    """Neither version starts: the original brain is back, nothing runs, and the message says
    exactly that and the command that starts 2.4.0."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    original = brain_contents(scene.brain.path)
    scene.world.compose.failures["up"] = "docker compose up engine exited 1: port is already allocated"

    run = scene.run(journal, run_id, plan)

    assert run.status is RunStatus.FAILED and statuses(run)["start"] is StepStatus.FAILED
    assert brain_contents(scene.brain.path) == original
    assert scene.world.compose.running_image() is None
    state = run.summary["service_state"]
    assert state.startswith(
        "engine is stopped: 2.3.1 did not start, and starting 2.4.0 again failed too "
        "(docker compose up engine exited 1: port is already allocated); the compose file names 2.4.0; "
        f"the original brain is back at {scene.brain.path}"
    ), state
    assert run.next_action is not None and "up -d engine" in run.next_action and "start 2.4.0" in run.next_action
    assert [e.kind for e in run.events if e.kind.startswith(("brain.put", "recovery."))] == [
        "brain.put_back",
        "recovery.compose_put_back",
        "recovery.previous_start_failed",
    ]


def test_a_failed_swap_runs_the_previous_version_on_the_untouched_brain(tmp_path: Path, journal: Journal) -> None:
    """The staged file vanishes before the swap: the swap refuses, the brain is untouched, and
    2.4.0, drained a moment ago, runs again on it."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    original_inode = scene.brain.path.stat().st_ino

    def remove_staged(event: EventView) -> None:
        if event.kind == "step.started" and event.details.get("step") == "swap_brain":
            for staged in scene.staged_files():
                staged.unlink()

    run = scene.run(journal, run_id, plan, sink=remove_staged)

    assert run.status is RunStatus.FAILED
    assert statuses(run)["swap_brain"] is StepStatus.FAILED
    assert scene.brain.path.stat().st_ino == original_inode
    assert not (scene.brain.path.parent / FORENSIC_FOLDER).exists(), "nothing was moved"
    assert scene.world.compose.running_image() == f"{REPO}:2.4.0"
    state = run.summary["service_state"]
    assert (
        state == "the brain swap failed, so engine is running 2.4.0 again (as before the rollback); "
        "the brain was not touched; the compose file names 2.4.0"
    ), state


def test_a_missing_brain_is_not_started_on(tmp_path: Path, journal: Journal) -> None:
    """The brain vanished during the drain: starting 2.4.0 would give it an empty memory, so
    the Engine stays stopped and the message says why and what to do."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    kept = tmp_path / "kept-aside.sqlite"

    def take_brain(event: EventView) -> None:
        if event.kind == "step.started" and event.details.get("step") == "swap_brain":
            scene.brain.path.rename(kept)

    run = scene.run(journal, run_id, plan, sink=take_brain)

    assert run.status is RunStatus.FAILED and statuses(run)["swap_brain"] is StepStatus.FAILED
    assert scene.world.compose.running_image() is None
    assert not scene.brain.path.exists(), "no empty brain was created"
    assert f"{scene.brain.path} is missing, so 2.4.0 was not started again" in run.summary["service_state"]
    assert run.next_action is not None and f"put it at {scene.brain.path}" in run.next_action


def test_an_interrupted_restore_says_where_the_original_brain_is(tmp_path: Path, journal: Journal) -> None:
    """Ctrl-C while 2.3.1 starts, after the swap: the run ends 'interrupted' with the snapshot in place.
    BUG: the interrupted run's summary and next action say nothing about the brain — not that the
    snapshot is in place, not where the original is — and it is not put back as a failure would be."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    scene.world.compose.interrupts.add("up")

    with pytest.raises(KeyboardInterrupt):
        scene.run(journal, run_id, plan)

    run = journal.run(run_id)
    assert run.status is RunStatus.INTERRUPTED
    told = f"{run.summary} {run.next_action}"
    assert str(forensic_dir(scene.brain.path, run_id)) in told, told


# --- failure before the stop: nothing changed ---------------------------------------------------------


def test_failure_in_stage_snapshot_leaves_everything_as_it_was(tmp_path: Path, journal: Journal) -> None:
    """The snapshot changed after preflight: staging refuses the copy, no staged file is left, the
    compose file is byte-identical and the brain untouched, the Engine still runs."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    with scene.snapshot.path.open("r+b") as handle:  # same size, different bytes
        handle.seek(scene.snapshot.size - 10)
        handle.write(b"0123456789")
    brain_before = scene.brain.path.read_bytes()

    run = scene.run(journal, run_id, plan)

    assert run.status is RunStatus.FAILED
    assert statuses(run)["stage_snapshot"] is StepStatus.FAILED
    assert "checksum" in (run.error or "")
    assert scene.staged_files() == []
    assert scene.world.compose_file.read_bytes() == COMPOSE_TEXT.encode()
    assert scene.brain.path.read_bytes() == brain_before
    assert scene.world.compose.running_image() == f"{REPO}:2.4.0"
    assert "nothing was changed" in run.summary["service_state"]
    assert run.summary["forensic_copy"] is None


def test_failure_after_staging_removes_the_staged_copy(tmp_path: Path, journal: Journal) -> None:
    """Pull fails after the snapshot was staged and the tag switched: the compose file goes back and the
    staged copy (only a copy) is removed; the brain was never touched."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    scene.world.compose.failures["pull"] = "docker compose pull engine exited 1: registry down"
    brain_before = scene.brain.path.read_bytes()

    run = scene.run(journal, run_id, plan)

    assert run.status is RunStatus.FAILED
    assert statuses(run)["stage_snapshot"] is StepStatus.SUCCEEDED and statuses(run)["pull"] is StepStatus.FAILED
    assert Path(next(s for s in run.steps if s.name == "stage_snapshot").detail["staged"]).exists() is False
    assert scene.staged_files() == []
    assert scene.world.compose_file.read_bytes() == COMPOSE_TEXT.encode()
    assert scene.brain.path.read_bytes() == brain_before
    assert scene.world.compose.running_image() == f"{REPO}:2.4.0"


# --- the core: snapshots and recovery after a crash ----------------------------------------------------


def core(scene: Restore, journal: Journal) -> Rollbot:
    return Rollbot(scene.world.config, journal, scene.world.systems(), FakeHealth(scene.world.compose, {"2.3.1"}))


def died_during_swap(scene: Restore, journal: Journal, swapped: bool) -> str:
    """A run journaled exactly as the runner does up to the swap, whose process then died."""
    run_id, _plan = scene.plan(journal)
    journal.start(run_id, ACTOR, DEAD_OWNER)
    for position in range(RESTORE_STEPS.index("swap_brain") + 1):
        journal.step_started(run_id, position, ACTOR)
        if position < RESTORE_STEPS.index("swap_brain"):
            journal.step_finished(run_id, position, ACTOR, StepStatus.SUCCEEDED, {})
    staged = stage(scene.snapshot, scene.brain.path, run_id)
    planned = prepare_swap(scene.brain.path, staged, forensic_dir(scene.brain.path, run_id))
    journal.note(
        run_id,
        ACTOR,
        "brain.swap",
        {
            "brain": str(scene.brain.path),
            "forensic_dir": str(planned.forensic_dir),
            "original_inode": planned.original_inode,
            "staged_inode": planned.staged_inode,
        },
    )
    if swapped:
        swap(scene.brain.path, staged, planned)
    return run_id


@pytest.mark.parametrize(
    "swapped, expected",
    [
        (True, "the restored snapshot is in place"),
        (False, "the original brain is in place"),
    ],
)
def test_recovery_reports_which_brain_is_in_place(
    tmp_path: Path, journal: Journal, swapped: bool, expected: str
) -> None:
    """The next start finds the run of a dead process, marks it interrupted, and says — and journals —
    which brain sits at the brain's path."""
    scene = Restore(tmp_path)
    run_id = died_during_swap(scene, journal, swapped)

    [(run, report)] = core(scene, journal).recover_interrupted()

    assert run.id == run_id and run.status is RunStatus.INTERRUPTED and run.current_step == "swap_brain"
    assert report is not None and expected in report and str(scene.brain.path) in report
    if swapped:
        assert str(forensic_dir(scene.brain.path, run_id)) in report
    [inspected] = [e for e in journal.run(run_id).events if e.kind == "brain.inspected"]
    assert inspected.details == {"in_place": report}
    assert core(scene, journal).recover_interrupted() == [], "recovery is idempotent"


def test_recovery_without_a_swap_note_reports_no_brain(tmp_path: Path, journal: Journal) -> None:
    """A run that died before the swap began has no brain to report; it is still marked interrupted."""
    scene = Restore(tmp_path)
    run_id, _ = scene.plan(journal)
    journal.start(run_id, ACTOR, DEAD_OWNER)
    journal.step_started(run_id, 0, ACTOR)
    [(run, report)] = core(scene, journal).recover_interrupted()
    assert (run.id, run.status, report) == (run_id, RunStatus.INTERRUPTED, None)
    assert not any(e.kind == "brain.inspected" for e in journal.run(run_id).events)


def test_core_snapshot_records_the_running_tag_and_journals_it(tmp_path: Path, journal: Journal) -> None:
    """`rollbot snapshot engine` names the tag of the running container, and the journal notes it."""
    scene = Restore(tmp_path)
    rollbot = core(scene, journal)
    taken = rollbot.take_snapshot("engine", ACTOR)
    assert taken.image_tag == "2.4.0" and taken.schema_version == 2
    assert brain_contents(taken.path) == brain_contents(scene.brain.path)
    listed = rollbot.snapshots("engine")
    assert [(s.path, problem) for s, problem in listed] == [(taken.path, None), (scene.snapshot.path, None)]
    with taken.path.open("r+b") as handle:
        handle.truncate(taken.size // 2)
    assert rollbot.snapshots("engine")[0][1] is not None, "a damaged snapshot is listed with what is wrong"
