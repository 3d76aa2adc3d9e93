"""`snapshot` through the core on a real brain: who may take one, never beside a run, the tag of a
running container only, private files; and the brain's lock between a snapshot and a restore."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.brain.snapshots import BrainBusy, lock_path, take_snapshot
from bot.brain.swap import forensic_dir, prepare_swap, stage, staged_path, swap
from bot.core.rollbot import Rollbot
from bot.errors import InvalidRequest
from bot.planning.plan import RollbackRequest
from storage import Journal

from .fakes import FakeHealth, World, brain_config, make_brain, make_world, upgrade_brain


def members_of(group: str) -> set[str]:
    return {"S0ONCALL": {"U0ALICE"}}.get(group, set())


def brain_world(tmp_path: Path, **target: object) -> World:
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    return make_world(tmp_path, brain=brain, **target)


def rollbot(world: World, journal: Journal) -> Rollbot:
    return Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.4.0", "2.3.1"}))


def snapshot_files(world: World) -> list[str]:
    folder = world.config.targets["engine"].brain.snapshots_dir  # type: ignore[union-attr]
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@contextmanager
def held_by_another_process(brain: Path) -> Iterator[None]:
    """Another rollbot process in the middle of a snapshot: it holds the brain's lock until told to stop."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bot.brain.snapshots import brain_lock\n"
        "with brain_lock(Path(sys.argv[1]), 'a snapshot of engine\\'s brain asked by U0BOB'):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(brain)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)


def test_only_the_targets_requesters_may_take_a_snapshot_from_slack(tmp_path: Path, journal: Journal) -> None:
    """BUG (issue 12, 5): anyone could fill the disk with copies of the production brain. From Slack
    (members_of given) only the target's requesters may, as for a rollback; nothing is written otherwise."""
    world = brain_world(tmp_path, requesters=("S0ONCALL",))
    core = rollbot(world, journal)

    with pytest.raises(InvalidRequest, match="not one of the requesters of engine"):
        core.take_snapshot("engine", "U0STRANGER", members_of)
    assert snapshot_files(world) == []

    taken = core.take_snapshot("engine", "U0ALICE", members_of)
    assert taken.path.is_file()


def test_a_snapshot_is_refused_while_a_run_of_the_target_is_in_progress(tmp_path: Path, journal: Journal) -> None:
    """BUG (issue 12, 5): a snapshot in flight during a run made its swap fail after the drain-stop. A
    snapshot asked while a run of the target is running is refused, naming the run; nothing is written."""
    world = brain_world(tmp_path)
    core = rollbot(world, journal)
    planned = core.plan(RollbackRequest("engine", "2.3.1", "U0ALICE", "5xx"))
    journal.start(planned.run.id, "U0ALICE", "someone-else@host:1")

    with pytest.raises(InvalidRequest) as refused:
        core.take_snapshot("engine", "U0ALICE")
    assert planned.run.id in str(refused.value) and "in progress" in str(refused.value)
    assert snapshot_files(world) == []


def test_a_restore_cannot_stage_or_swap_while_a_snapshot_is_in_flight(tmp_path: Path) -> None:
    """BUG (issue 12, 5): the other half: while another process snapshots the brain (holds its lock),
    staging fails before the drain-stop, naming the holder, and leaves no staged file; the swap refuses
    the same way instead of "is the Engine stopped?"."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    snapshot = take_snapshot(brain, "2.3.1")
    upgrade_brain(brain.path)
    staged = stage(snapshot, brain.path, "run1")
    plan = prepare_swap(brain.path, staged, forensic_dir(brain.path, "run1"))
    staged_path(brain.path, "run2").unlink(missing_ok=True)

    with held_by_another_process(brain.path):
        with pytest.raises(BrainBusy, match="is busy: a snapshot of engine's brain asked by U0BOB"):
            stage(snapshot, brain.path, "run2")
        assert not staged_path(brain.path, "run2").exists()
        with pytest.raises(BrainBusy, match="U0BOB"):
            swap(brain.path, staged, plan)
        assert brain.path.stat().st_ino == plan.original_inode, "the brain was not touched"

    swap(brain.path, staged, plan)  # the lock is free again once the snapshot ends
    assert brain.path.stat().st_ino == staged.inode


def test_a_snapshot_is_refused_while_a_restore_holds_the_brain(tmp_path: Path, journal: Journal) -> None:
    """A snapshot asked while a restore (another process) holds the lock is refused with who holds it."""
    world = brain_world(tmp_path)
    with (
        held_by_another_process(world.config.targets["engine"].brain.path),  # type: ignore[union-attr]
        pytest.raises(BrainBusy, match="U0BOB"),
    ):
        rollbot(world, journal).take_snapshot("engine", "U0ALICE")
    assert [name for name in snapshot_files(world) if not name.startswith(".")] == []


def test_the_sidecar_names_the_image_of_a_running_container_only(tmp_path: Path, journal: Journal) -> None:
    """BUG (issue 12, 5): the image tag came from a stopped container, which says nothing of what wrote the brain."""
    world = brain_world(tmp_path)
    container = world.docker.containers["c0ffee"]
    world.docker.containers["c0ffee"] = dataclasses.replace(container, running=False, state="exited")

    stopped = rollbot(world, journal).take_snapshot("engine", "cli:alice")
    assert stopped.image_tag is None

    world.docker.containers["c0ffee"] = container
    running = rollbot(world, journal).take_snapshot("engine", "cli:alice")
    assert running.image_tag == "2.4.0"


def test_snapshots_and_sidecars_are_private(tmp_path: Path, journal: Journal) -> None:
    """BUG (issue 12, 6): snapshots and sidecars were world-readable copies of the brain. Files 0600, folder 0700."""
    world = brain_world(tmp_path)
    folder = world.config.targets["engine"].brain.snapshots_dir  # type: ignore[union-attr]
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)

    taken = rollbot(world, journal).take_snapshot("engine", "cli:alice")

    assert folder.stat().st_mode & 0o777 == 0o700
    assert taken.path.stat().st_mode & 0o777 == 0o600
    assert Path(f"{taken.path}.json").stat().st_mode & 0o777 == 0o600
    assert lock_path(world.config.targets["engine"].brain.path).stat().st_mode & 0o777 == 0o600  # type: ignore[union-attr]
