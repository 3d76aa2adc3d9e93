"""Upgrades of the demo Engine at the terminal, on the real daemon: the README's walk-through.

2.3.1 runs and remembers; `rollbot upgrade engine 2.4.0` snapshots the brain just before the stop,
2.4.0 migrates the brain to schema 2 and fails /health, and the rollback back is offered at once.
`rollbot rollback engine` (no version) then goes back to 2.3.1 and restores the pre-upgrade
snapshot without being told which; 2.4.0 is known-bad until cleared; the fixed 2.4.1 rolls
forward as an upgrade that names the forensic copy of the restore.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import RunKind, RunStatus
from tests.integration.brains import digests
from tests.integration.demo import BROKEN, FIXED, HEALTHY, Deployment, deployment, wait_until

UPGRADE_STEPS = ["capture_logs", "set_image_tag", "pull", "snapshot_brain", "stop", "start", "verify_health"]


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[tuple[Deployment, str]]:
    """3 turns on 2.3.1, then `rollbot upgrade engine 2.4.0 --yes`, which fails its health check."""
    with deployment(tmp_path, running=HEALTHY, brain=True, drain_seconds=1, health_timeout=6) as deployed:
        deployed.remember(3)
        done = deployed.rollbot("upgrade", "engine", BROKEN, "--yes", "--reason", "release 2.4.0")
        yield deployed, done.stdout + done.stderr
        assert done.returncode == 1, done.stdout + done.stderr


def test_an_upgrade_snapshots_first_and_the_next_rollback_restores_that_snapshot_unasked(
    upgraded: tuple[Deployment, str],
) -> None:
    deployed, said = upgraded
    offered, upgrade = deployed.runs()  # newest first: the rollback offered, journaled, and the upgrade
    upgrade = deployed.journal().run(upgrade.id)
    assert offered.kind == RunKind.ROLLBACK and offered.status is RunStatus.CANCELLED
    assert f"offered at the terminal as `rollbot rollback engine {HEALTHY}" in (offered.error or "")
    assert upgrade.kind == RunKind.UPGRADE and upgrade.status is RunStatus.FAILED
    assert [step.name for step in upgrade.steps] == UPGRADE_STEPS and upgrade.current_step == "verify_health"
    assert f"Upgrade plan engine (demo): {HEALTHY} → {BROKEN}" in said
    [snapshot] = deployed.snapshots.glob("*.sqlite")
    sidecar = json.loads(snapshot.with_suffix(".sqlite.json").read_text())
    assert (sidecar["image_tag"], sidecar["upgrade_run"], sidecar["upgrade_to"]) == (HEALTHY, upgrade.id, BROKEN)
    assert sidecar["schema_version"] == 1 and digests(deployed.brain)["#user_version"][0] == 2
    start = next(step for step in upgrade.steps if step.name == "start")
    assert start.detail["started_at"] >= sidecar["taken_at"]

    # The rollback is offered at once, pre-planned, with the command to run it.
    assert "the rollback is ready" in said and f"Rollback plan engine (demo): {BROKEN} → {HEALTHY}" in said
    assert (
        f'to roll back: rollbot rollback engine {HEALTHY} --brain restore --reason "upgrade to {BROKEN} failed' in said
    )
    assert f"the pre-upgrade snapshot of upgrade run {upgrade.id}" in said
    assert not (deployed.folder / "postmortems").exists(), "an upgrade files no postmortem"

    deployed.remember(2)  # the bad window
    done = deployed.rollbot("rollback", "engine", "--yes", "--reason", "2.4.0 fails /health")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{HEALTHY} is the previous good version" in done.stdout
    assert (
        f"{snapshot.name}: taken" in done.stdout and f"pre-upgrade snapshot of upgrade run {upgrade.id}" in done.stdout
    )
    assert digests(deployed.brain) == digests(snapshot)
    wait_until(lambda: (answer := deployed.health()) is not None and answer.status_code == 200, 30, what="/health ok")
    rollback = deployed.journal().run(deployed.runs()[0].id)
    assert rollback.kind == RunKind.ROLLBACK and rollback.status is RunStatus.SUCCEEDED
    assert rollback.plan["brain"]["snapshot"]["path"] == str(snapshot)


def test_a_known_bad_version_is_refused_until_cleared_then_a_fixed_build_rolls_forward(
    upgraded: tuple[Deployment, str],
) -> None:
    deployed, _ = upgraded
    deployed.remember(2)
    rolled = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "2.4.0 fails /health")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    rollback = deployed.runs()[0]

    refused = deployed.rollbot("upgrade", "engine", BROKEN, "--yes")
    assert refused.returncode == 2
    assert (
        f"refused: root cause first: {BROKEN} is known-bad: rolled back by run {rollback.id}"
        in refused.stdout + refused.stderr
    )
    assert f"rollbot clear engine {BROKEN} --reason" in refused.stdout + refused.stderr
    also = deployed.rollbot("rollback", "engine", BROKEN, "--yes")
    assert also.returncode == 2 and "root cause first" in also.stdout + also.stderr

    status = deployed.rollbot("status")
    assert status.returncode == 0 and f"{BROKEN} is known-bad: rolled back by run {rollback.id}" in status.stdout
    unreasoned = deployed.rollbot("clear", "engine", BROKEN, "--reason", " ")
    assert unreasoned.returncode == 2 and "needs a reason" in unreasoned.stdout + unreasoned.stderr
    cleared = deployed.rollbot("clear", "engine", BROKEN, "--reason", "index migration fixed in 2.4.1")
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    history = deployed.rollbot("history", "engine")
    assert "cleared by cli:" in history.stdout and "index migration fixed in 2.4.1" in history.stdout
    assert "known-bad" not in deployed.rollbot("status").stdout
    not_confirmed = deployed.rollbot("upgrade", "engine", BROKEN)  # no longer refused: it asks, and is told no
    assert not_confirmed.returncode == 2 and "cancelled: not confirmed" in not_confirmed.stdout + not_confirmed.stderr

    forward = deployed.rollbot("rollback", "engine", FIXED, "--yes", "--reason", "the fix")
    said = forward.stdout + forward.stderr
    assert forward.returncode == 0, said
    assert f"Upgrade plan engine (demo): {HEALTHY} → {FIXED}" in said and "Rolling back" not in said
    assert f"rolling forward: {FIXED} is newer than the running {HEALTHY}" in said
    assert f"the brain was restored by run {rollback.id}" in said
    assert f"{FIXED} will migrate the restored brain (schema 1) again" in said
    rows = sum(table["rows"] for table in rollback.plan["brain"]["loss"]["tables"])
    assert rows > 0 and f"rollbot-forensic/{rollback.id}/brain.sqlite holds {rows} row(s) written at schema 2" in said
    assert f"`rollbot replay {rollback.id} --table TABLE`" in said
    run = deployed.journal().run(deployed.runs()[0].id)
    assert run.kind == RunKind.UPGRADE and run.status is RunStatus.SUCCEEDED
    assert any(step.name == "snapshot_brain" for step in run.steps)
    assert deployed.health().json() == {"status": "ok", "version": FIXED, "brain_schema": 2}
    assert not (deployed.folder / "postmortems" / run.id).exists(), "a roll forward files no postmortem"
