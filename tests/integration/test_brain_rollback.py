"""Brain restores of the demo Engine on the real daemon: exact data, refusals, crash safety.

The story of every test: 2.3.1 runs and remembers, a snapshot is taken, 2.4.0 is deployed and
migrates the brain forward (schema 1 → 2), remembers more (the bad window), and 2.3.1 can no
longer read the brain. Rolling back to 2.3.1 therefore needs the brain restored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import RunStatus
from tests.integration.brains import digests, rows_missing_from
from tests.integration.demo import BROKEN, HEALTHY, Deployment, deployment, non_empty_lines, wait_until

MEMORY_TABLES = ["conversations", "episodes", "feedback", "knowledge", "social_graph"]
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


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[Deployment]:
    """3 turns on 2.3.1, a snapshot, the upgrade to 2.4.0, then 2 turns in the bad window."""
    with deployment(tmp_path, running=HEALTHY, brain=True, drain_seconds=1) as deployed:
        deployed.remember(3)
        taken = deployed.rollbot("snapshot", "engine")
        assert taken.returncode == 0, taken.stdout + taken.stderr
        deployed.deploy(BROKEN)
        assert deployed.wait_for_answer().status_code == 503
        deployed.remember(2)
        yield deployed


def snapshot_file(deployed: Deployment) -> Path:
    [snapshot] = sorted(deployed.snapshots.glob("*.sqlite"))
    return snapshot


def test_brain_is_restored_exactly_and_the_bad_window_is_kept(upgraded: Deployment) -> None:
    snapshot = snapshot_file(upgraded)
    at_snapshot = digests(snapshot)
    bad_brain = digests(upgraded.brain)
    assert at_snapshot["#user_version"][0] == 1 and bad_brain["#user_version"][0] == 2

    done = upgraded.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "2.4.0 cannot serve")

    assert done.returncode == 0, done.stdout + done.stderr
    assert digests(upgraded.brain) == at_snapshot
    wait_until(lambda: (answer := upgraded.health()) is not None and answer.status_code == 200, 30, what="/health ok")
    assert upgraded.health().json() == {"status": "ok", "version": HEALTHY, "brain_schema": 1}

    run = upgraded.journal().run(upgraded.runs()[0].id)
    assert run.status is RunStatus.SUCCEEDED
    assert [step.name for step in run.steps] == RESTORE_STEPS
    counted = {t["table"]: t["rows"] for t in run.plan["brain"]["loss"]["tables"]}
    assert counted == {**dict.fromkeys(MEMORY_TABLES, 2), "tool_calls": 2}

    forensic = Path(run.summary["forensic_copy"])
    assert digests(forensic) == bad_brain, "the forensic copy is the whole bad brain, exactly"
    assert rows_missing_from(forensic, snapshot) == counted
    assert str(forensic) in done.stdout and "restored from" in done.stdout
    assert not list(upgraded.brain.parent.glob(".brain.sqlite.rollbot-staged-*"))

    postmortem = (upgraded.folder / "postmortems" / run.id / "postmortem.md").read_text()
    assert "| episodes | 2 |" in postmortem and "| tool_calls | 2 |" in postmortem
    assert f"Forensic brain copy: {forensic}" in postmortem


def test_corrupted_snapshot_is_refused_and_nothing_is_touched(upgraded: Deployment) -> None:
    snapshot = snapshot_file(upgraded)
    with snapshot.open("r+b") as handle:
        handle.truncate(snapshot.stat().st_size // 2)
    assert_refused_untouched(upgraded, "snapshot verifies", "does not match the checksum")


def test_truncated_hand_made_snapshot_is_refused(upgraded: Deployment) -> None:
    snapshot = snapshot_file(upgraded)
    hand_made = upgraded.brain.with_name("brain-pre-upgrade.db")
    hand_made.write_bytes(snapshot.read_bytes()[: snapshot.stat().st_size // 2])
    for path in upgraded.snapshots.iterdir():
        path.unlink()
    assert_refused_untouched(upgraded, "snapshot verifies", "brain-pre-upgrade.db fails")


def test_missing_snapshot_is_refused_and_nothing_is_touched(upgraded: Deployment) -> None:
    for path in upgraded.snapshots.iterdir():
        path.unlink()
    assert_refused_untouched(upgraded, "snapshot", "no snapshot of the brain")


def test_snapshot_newer_in_schema_than_the_target_reads_is_refused(upgraded: Deployment) -> None:
    for path in upgraded.snapshots.iterdir():
        path.unlink()
    taken = upgraded.rollbot("snapshot", "engine")
    assert taken.returncode == 0, taken.stderr
    assert_refused_untouched(upgraded, "snapshot", f"no snapshot {HEALTHY} can read")


def assert_refused_untouched(deployed: Deployment, check: str, reason: str) -> None:
    compose_before = deployed.compose_file.read_bytes()
    container_before = deployed.container().attrs
    brain_before = (deployed.brain.stat().st_ino, digests(deployed.brain))
    beside_before = sorted(
        deployed.brain.parent.glob(".brain.sqlite.rollbot-*")
    )  # the brain's lock, if any snapshot took it

    done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes")

    assert done.returncode == 2, done.stdout + done.stderr
    [line] = non_empty_lines(done.stderr)
    assert line.startswith("refused: ") and reason in line, line
    assert deployed.compose_file.read_bytes() == compose_before
    container_after = deployed.container().attrs
    assert (container_after["Id"], container_after["State"]["StartedAt"]) == (
        container_before["Id"],
        container_before["State"]["StartedAt"],
    )
    assert (deployed.brain.stat().st_ino, digests(deployed.brain)) == brain_before
    assert sorted(deployed.brain.parent.glob(".brain.sqlite.rollbot-*")) == beside_before, "no staged copy is left"
    assert all(path.name.endswith("rollbot-lock") for path in beside_before)
    assert not (deployed.brain.parent / "rollbot-forensic").exists()
    run = deployed.journal().run(deployed.runs()[0].id)
    assert run.status is RunStatus.REFUSED
    [failed] = [c for c in run.plan["checks"] if c["result"] == "failed"]
    assert failed["name"] == check
