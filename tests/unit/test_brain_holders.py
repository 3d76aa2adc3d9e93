"""Issue 12, observation 1: the brain swap must not go ahead while anything but the Engine holds the brain.

Real SQLite brains and real processes: a holder is a Python process with a connection open on
the brain, idle (which `wal_checkpoint(TRUNCATE)` lets pass) and writing when told. Docker is
the fake, whose running containers carry mounts as the daemon reports them.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from bot.brain.holders import containers_holding, lock_holder, processes_holding
from bot.brain.swap import FORENSIC_FOLDER
from bot.planning.plan import RollbackRequest, make_plan
from bot.ports import MountFacts, RunningMounts
from storage import EventView, Journal, RunStatus, StepStatus

from .fakes import REPO, brain_contents, make_brain
from .test_brain_runner import ACTOR, Restore, statuses

HOLDS = "nothing else holds the brain"
HOLDER_SCRIPT = """\
import sqlite3, sys
brain = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
brain.execute("SELECT count(*) FROM sqlite_master").fetchone()
print("ready", flush=True)
for line in sys.stdin:
    brain.execute("INSERT INTO episodes (created_at, content) VALUES ('2026-11-26T06:00:00Z', ?)", (line.strip(),))
    print("written", flush=True)
"""
WORKER_ID = "f" * 64


class Holder:
    """Another process with the brain open: idle until `write` makes it insert a row."""

    def __init__(self, brain: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER_SCRIPT, str(brain)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    @property
    def pid(self) -> int:
        return self.process.pid

    def write(self, content: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(content + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "written"

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@contextmanager
def holding(brain: Path) -> Iterator[Holder]:
    holder = Holder(brain)
    try:
        yield holder
    finally:
        holder.stop()


def episodes(path: Path) -> list[str]:
    return [row[2] for row in brain_contents(path)["episodes"]]  # type: ignore[index]


def untouched(scene: Restore) -> tuple[object, ...]:
    """What a refused plan must leave alone: the compose file, the brain (inode and rows), the folder."""
    brain = scene.brain.path
    return (
        scene.world.compose_file.read_bytes(),
        brain.stat().st_ino,
        brain_contents(brain),
        sorted(p.name for p in brain.parent.iterdir()),
        scene.world.compose.running_image(),
    )


def plan_of(scene: Restore):  # type: ignore[no-untyped-def]
    return make_plan(RollbackRequest("engine", "2.3.1", ACTOR, "5xx"), scene.world.config, scene.world.systems())


def holds_check(plan) -> object:  # type: ignore[no-untyped-def]
    [found] = [check for check in plan.checks if check.name == HOLDS]
    return found


def worker(
    scene: Restore, source: Path, container_id: str = WORKER_ID, name: str = "demo-worker-1", running: bool = True
) -> None:
    """A second container on the fake host mounting `source` at /data."""
    scene.world.docker.run_container(container_id, f"{REPO}:2.4.0", name=name)
    if not running:
        facts = scene.world.docker.containers[container_id]
        scene.world.docker.containers[container_id] = replace(facts, running=False, state="exited")
    scene.world.docker.mounts[container_id] = (MountFacts(str(source), "/data"),)


# --- before the drain-stop: preflight refuses, naming the holder ---------------------------------------------


def test_a_process_with_an_idle_connection_refuses_the_plan_and_is_named(tmp_path: Path) -> None:
    scene = Restore(tmp_path)
    with holding(scene.brain.path) as holder:
        before = untouched(scene)
        plan = plan_of(scene)
        assert not plan.approvable
        check = holds_check(plan)
        assert check.result.value == "failed", check
        assert f"process {holder.pid} (" in check.detail and "brain.sqlite open" in check.detail, check.detail
        assert plan.refusal == check.detail
        assert untouched(scene) == before, "preflight only looks"


@pytest.mark.parametrize("mounted", ["data", "parent", "file"])
def test_another_running_container_mounting_the_brain_refuses_the_plan(tmp_path: Path, mounted: str) -> None:
    """A worker sharing ./data, one mounting a parent folder, one mounting the brain file itself."""
    scene = Restore(tmp_path)
    source = {"data": scene.brain.path.parent, "parent": tmp_path, "file": scene.brain.path}[mounted]
    worker(scene, source)
    before = untouched(scene)
    plan = plan_of(scene)
    check = holds_check(plan)
    assert check.result.value == "failed" and not plan.approvable
    assert f"container demo-worker-1 mounts {source} at /data" in check.detail, check.detail
    assert untouched(scene) == before


def test_a_one_off_of_the_service_mounting_the_brain_folder_is_a_holder(tmp_path: Path) -> None:
    """`docker compose run` of the service is not the service: the run does not stop it, and it can
    open the brain at any moment."""
    scene = Restore(tmp_path)
    worker(scene, scene.brain.path.parent, name="demo-engine-run-3f2a")
    plan = plan_of(scene)
    assert "container demo-engine-run-3f2a mounts" in holds_check(plan).detail
    assert not plan.approvable


def test_the_engine_itself_a_stopped_container_and_a_snapshots_mount_are_not_holders(tmp_path: Path) -> None:
    """The service's own container (its process has the brain open) is what the run stops; a stopped
    container and one mounting only the snapshots folder cannot reach the brain."""
    scene = Restore(tmp_path)
    scene.world.docker.mounts["c0ffee"] = (MountFacts(str(scene.brain.path.parent), "/data"),)
    worker(scene, scene.brain.path.parent, container_id="e" * 64, name="old-worker", running=False)
    worker(scene, scene.brain.snapshots_dir, name="backup-agent")
    with holding(scene.brain.path) as engine_process:
        scene.world.docker.pids["c0ffee"] = {engine_process.pid}
        plan = plan_of(scene)
    assert plan.approvable, plan.refusal
    assert holds_check(plan).result.value == "passed"


# --- after the drain-stop: the run ends with the previous version running, the holder named, no write lost ---


def test_a_process_that_opens_the_brain_after_the_stop_ends_the_run_and_loses_no_write(
    tmp_path: Path, journal: Journal
) -> None:
    """Before the fix the swap went ahead (the idle connection let the checkpoint pass) and the
    holder's later write landed in the forensic copy, while the live brain was the snapshot."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    original_inode = scene.brain.path.stat().st_ino
    compose_before = scene.world.compose_file.read_bytes()
    holders: list[Holder] = []

    def opens_at_the_stop(event: EventView) -> None:
        if event.kind == "step.started" and event.details.get("step") == "swap_brain":
            holders.append(Holder(scene.brain.path))

    try:
        run = scene.run(journal, run_id, plan, sink=opens_at_the_stop)
        [holder] = holders
        holder.write("written by the holder after the rollback")
    finally:
        for holder in holders:
            holder.stop()

    assert run.status is RunStatus.FAILED
    assert statuses(run)["swap_brain"] is StepStatus.FAILED
    assert run.error is not None and f"process {holder.pid} (" in run.error and "brain.sqlite open" in run.error, (
        run.error
    )
    assert scene.brain.path.stat().st_ino == original_inode, "the original brain stayed in place"
    assert "written by the holder after the rollback" in episodes(scene.brain.path), (
        "the holder's write is in the live brain"
    )
    assert not (scene.brain.path.parent / FORENSIC_FOLDER).exists(), "nothing was moved aside"
    assert scene.staged_files() == []
    assert scene.world.compose_file.read_bytes() == compose_before
    assert scene.world.compose.running_image() == f"{REPO}:2.4.0", "the previous version runs again"
    assert "engine is running 2.4.0 again" in run.summary["service_state"]


def test_a_container_that_mounts_the_brain_after_the_stop_ends_the_run_and_is_named(
    tmp_path: Path, journal: Journal
) -> None:
    """A `compose up` that outlived its timeout brings a worker up while the Engine drains."""
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    original = (scene.brain.path.stat().st_ino, brain_contents(scene.brain.path))

    def worker_appears(event: EventView) -> None:
        if event.kind == "step.started" and event.details.get("step") == "swap_brain":
            worker(scene, scene.brain.path.parent)

    run = scene.run(journal, run_id, plan, sink=worker_appears)

    assert run.status is RunStatus.FAILED
    assert run.error is not None and "container demo-worker-1 mounts" in run.error, run.error
    assert (scene.brain.path.stat().st_ino, brain_contents(scene.brain.path)) == original
    assert scene.world.compose.running_image() == f"{REPO}:2.4.0"


# --- the pieces, on real files and processes -----------------------------------------------------------------


def test_the_lock_test_finds_an_idle_wal_connection_that_the_checkpoint_lets_pass(tmp_path: Path) -> None:
    brain = make_brain(tmp_path / "brain.sqlite")
    with holding(brain):
        with closing(sqlite3.connect(brain)) as connection:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "SQLite's checkpoint does not see the idle holder"
        found = lock_holder(brain, timeout=0.2)
        assert found is not None and "database is locked" in found.describe()
    assert lock_holder(brain) is None, "once the holder is gone the brain can be locked"


def test_the_lock_test_writes_nothing(tmp_path: Path) -> None:
    brain = make_brain(tmp_path / "brain.sqlite")
    before = brain_contents(brain)
    assert lock_holder(brain) is None
    assert brain_contents(brain) == before


def test_a_holder_writing_through_its_wal_is_found_by_its_open_files(tmp_path: Path) -> None:
    brain = make_brain(tmp_path / "brain.sqlite")
    with holding(brain) as holder:
        holder.write("a turn")
        scan = processes_holding(brain)
        assert [h.what.startswith(f"process {holder.pid} (") for h in scan.holders] == [True], scan
        assert processes_holding(brain, excluded_pids={holder.pid}).holders == ()


def test_rollbot_itself_is_not_a_holder(tmp_path: Path) -> None:
    brain = make_brain(tmp_path / "brain.sqlite")
    with closing(sqlite3.connect(brain)) as mine:
        mine.execute("SELECT count(*) FROM episodes").fetchone()
        assert processes_holding(brain).holders == ()


def fake_proc_entry(proc: Path, pid: int, target: Path, cgroup: str, command: str) -> None:
    """A /proc/PID as the kernel lays it out: fd links, cgroup, NUL-separated cmdline."""
    (proc / str(pid) / "fd").mkdir(parents=True)
    os.symlink(target, proc / str(pid) / "fd" / "3")
    (proc / str(pid) / "cgroup").write_text(cgroup)
    (proc / str(pid) / "cmdline").write_bytes(command.replace(" ", "\0").encode() + b"\0")


def test_processes_in_the_engines_container_are_not_counted_and_others_are_named_by_container(tmp_path: Path) -> None:
    brain = make_brain(tmp_path / "brain.sqlite")
    proc = tmp_path / "proc"
    engine, other = "a" * 64, "b" * 64
    fake_proc_entry(proc, 101, brain, f"0::/docker/{engine}\n", "python3 /app/engine.py")
    fake_proc_entry(proc, 202, Path(f"{brain}-wal"), f"0::/system.slice/docker-{other}.scope\n", "python3 worker.py")
    fake_proc_entry(proc, 303, tmp_path / "elsewhere.txt", "0::/\n", "cat")
    (tmp_path / "elsewhere.txt").write_text("not the brain")
    with closing(sqlite3.connect(brain)) as connection:  # the -wal exists while a connection is open
        connection.execute("SELECT count(*) FROM episodes").fetchone()
        scan = processes_holding(brain, own_containers={engine[:12]}, names={other: "demo-worker-1"}, proc=proc)
    assert [(h.what, h.how) for h in scan.holders] == [
        ("process 202 (python3 worker.py) in container demo-worker-1", "has brain.sqlite-wal open")
    ]


def test_container_mounts_compare_host_paths() -> None:
    brain = Path("/srv/engine/data/brain.sqlite")
    running = [
        RunningMounts("1" * 64, "engine", (MountFacts("/srv/engine/data", "/data"),)),
        RunningMounts("2" * 64, "worker", (MountFacts("/srv/engine", "/srv"),)),
        RunningMounts("3" * 64, "wal-reader", (MountFacts("/srv/engine/data/brain.sqlite-wal", "/wal", "bind"),)),
        RunningMounts("4" * 64, "sibling", (MountFacts("/srv/engine/data-old", "/data"),)),
        RunningMounts("5" * 64, "volume", (MountFacts("/var/lib/docker/volumes/x/_data", "/data", "volume"),)),
    ]
    found = containers_holding(brain, running, own={"1" * 12})
    assert [h.what for h in found] == ["container worker", "container wal-reader"]
