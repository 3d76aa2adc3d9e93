"""Issue 12, observation 1, on the real daemon: a brain restore while something else holds the brain.

The demo Engine's story (3 turns on 2.3.1, a snapshot, the upgrade to 2.4.0 migrating the brain,
2 turns in the bad window), plus another holder of the brain: a second container mounting the
brain's folder before the rollback starts (refused, nothing touched), or a process of this host
that opens the brain when the Engine begins its drain (the run ends with 2.4.0 running again on
the untouched brain, and the holder's writes are in it).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from storage import RunStatus
from tests.integration.brains import digests, open_readonly
from tests.integration.demo import BASE_IMAGE, BROKEN, HEALTHY, REPOSITORY, Deployment, deployment, non_empty_lines

# Follows the Engine's log; at its drain signal it opens the brain, writes a row and stays, idle,
# writing one more row per line it is given.
OPENS_AT_THE_DRAIN = """\
import sqlite3, subprocess, sys
container, path = sys.argv[1:3]
logs = subprocess.Popen(["docker", "logs", "--follow", container], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
for line in logs.stdout:
    if "received signal" in line:
        break
logs.kill()
brain = sqlite3.connect(path, isolation_level=None, timeout=30)
def write(text):
    brain.execute("INSERT INTO episodes (created_at, content) VALUES ('2026-11-26T06:00:00Z', ?)", (text,))
write("holder: opened at the drain")
print("holding", flush=True)
for line in sys.stdin:
    write(line.strip())
    print("written", flush=True)
"""


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[Deployment]:
    """3 turns on 2.3.1, a snapshot, the upgrade to 2.4.0, then 2 turns in the bad window."""
    with deployment(tmp_path, running=HEALTHY, brain=True, drain_seconds=3) as deployed:
        deployed.remember(3)
        taken = deployed.rollbot("snapshot", "engine")
        assert taken.returncode == 0, taken.stdout + taken.stderr
        deployed.deploy(BROKEN)
        deployed.remember(2)
        yield deployed


@pytest.fixture
def worker(upgraded: Deployment) -> Iterator[str]:
    """A container that is not the service, sharing the brain's folder (a worker, a stray one-off)."""
    name = f"{upgraded.project}-worker-{secrets.token_hex(2)}"
    subprocess.run(
        [
            "docker",
            "run",
            "--detach",
            "--name",
            name,
            "--volume",
            f"{upgraded.folder / 'data'}:/data",
            BASE_IMAGE,
            "sleep",
            "3600",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


def test_a_container_mounting_the_brain_folder_refuses_the_restore_and_nothing_is_touched(
    upgraded: Deployment, worker: str
) -> None:
    compose_before = upgraded.compose_file.read_bytes()
    container_before = upgraded.container().attrs
    brain_before = (upgraded.brain.stat().st_ino, upgraded.brain.read_bytes(), digests(upgraded.brain))

    done = upgraded.rollbot("rollback", "engine", HEALTHY, "--yes", "--brain", "restore")

    assert done.returncode == 2, done.stdout + done.stderr
    [line] = non_empty_lines(done.stderr)
    assert (
        line.startswith("refused: the brain is held by more than the Engine") and f"container {worker} mounts" in line
    ), line
    assert upgraded.compose_file.read_bytes() == compose_before
    container_after = upgraded.container().attrs
    assert (container_after["Id"], container_after["State"]["StartedAt"], container_after["State"]["Running"]) == (
        container_before["Id"],
        container_before["State"]["StartedAt"],
        True,
    )
    assert (upgraded.brain.stat().st_ino, upgraded.brain.read_bytes(), digests(upgraded.brain)) == brain_before
    assert not [p for p in upgraded.brain.parent.glob(".brain.sqlite.rollbot-*") if not p.name.endswith("-lock")]
    assert not (upgraded.brain.parent / "rollbot-forensic").exists()
    run = upgraded.journal().run(upgraded.runs()[0].id)
    assert run.status is RunStatus.REFUSED
    [failed] = [c for c in run.plan["checks"] if c["result"] == "failed"]
    assert failed["name"] == "nothing else holds the brain"


def holder_rows(brain: Path) -> list[str]:
    with closing(open_readonly(brain)) as connection:
        return [
            row[0]
            for row in connection.execute("SELECT content FROM episodes WHERE content LIKE 'holder:%' ORDER BY id")
        ]


def test_a_process_that_opens_the_brain_at_the_drain_ends_the_run_on_the_previous_version(upgraded: Deployment) -> None:
    compose_before = upgraded.compose_file.read_bytes()
    inode_before = upgraded.brain.stat().st_ino
    holder = subprocess.Popen(
        [sys.executable, "-c", OPENS_AT_THE_DRAIN, upgraded.container().id, str(upgraded.brain)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        done = upgraded.rollbot("rollback", "engine", HEALTHY, "--yes", "--brain", "restore")
        assert done.returncode == 1, done.stdout + done.stderr  # the drain happened: the holder is there
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert holder.stdin is not None
        holder.stdin.write("holder: written after the run\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "written"
    finally:
        holder.kill()
        holder.wait(timeout=30)

    assert f"process {holder.pid} (" in done.stdout + done.stderr, done.stdout + done.stderr
    run = upgraded.journal().run(upgraded.runs()[0].id)
    assert run.status is RunStatus.FAILED
    assert {s.name: s.status.value for s in run.steps}["swap_brain"] == "failed"
    assert f"process {holder.pid} (" in (run.error or "")
    assert upgraded.compose_file.read_bytes() == compose_before, "the compose file names 2.4.0 again, byte for byte"
    container = upgraded.container().attrs
    assert container["State"]["Running"] and container["Config"]["Image"] == f"{REPOSITORY}:{BROKEN}"
    assert upgraded.brain.stat().st_ino == inode_before, "the original brain never moved"
    assert holder_rows(upgraded.brain) == ["holder: opened at the drain", "holder: written after the run"]
    assert digests(upgraded.brain)["#user_version"][0] == 2
    assert not (upgraded.brain.parent / "rollbot-forensic").exists()
