"""SIGKILL at every point between the brain swap's operations: one whole brain is always in place,
and `rollbot resume` finishes the run from there.

rollbot's failpoints (`ROLLBOT_FAILPOINTS`) make the process kill itself at a named point, as a
power cut would. After each death the brain at the brain's path must be, table for table, either
the complete old brain or the complete snapshot, and the next `rollbot` start must say which.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.brains import digests
from tests.integration.demo import BROKEN, HEALTHY, deployment

KILL_POINTS = {
    "swap:before-checkpoint": "original",
    "swap:after-checkpoint": "original",
    "swap:after-link": "original",
    "swap:after-sidecars": "original",
    "swap:after-rename": "snapshot",
    "swap:after-fsync": "snapshot",
}
REPORTS = {
    "original": "the original brain is in place",
    "snapshot": "the restored snapshot is in place",
}


@pytest.mark.parametrize("point, expected", KILL_POINTS.items(), ids=KILL_POINTS.keys())
def test_killed_mid_swap_leaves_one_whole_brain(tmp_path: Path, point: str, expected: str) -> None:
    with deployment(tmp_path, running=HEALTHY, brain=True) as deployed:
        deployed.remember(3)
        assert deployed.rollbot("snapshot", "engine").returncode == 0
        deployed.deploy(BROKEN)
        deployed.remember(2)
        [snapshot] = deployed.snapshots.glob("*.sqlite")
        whole = {"original": digests(deployed.brain), "snapshot": digests(snapshot)}
        assert whole["original"] != whole["snapshot"]

        died = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", env={"ROLLBOT_FAILPOINTS": point})
        assert died.returncode == -9, died.stdout + died.stderr

        assert digests(deployed.brain) == whole[expected]
        for sidecar in ("-wal", "-journal"):
            leftover = Path(f"{deployed.brain}{sidecar}")
            assert not leftover.exists() or leftover.stat().st_size == 0, f"{leftover} would mix into the brain"

        history = deployed.rollbot("history")
        assert history.returncode == 0, history.stderr
        assert "was interrupted during step 'swap_brain'" in history.stderr
        assert REPORTS[expected] in history.stderr
        forensic = list((deployed.brain.parent / "rollbot-forensic").glob("*/brain.sqlite"))
        if expected == "snapshot":
            [forensic_brain] = forensic
            assert digests(forensic_brain) == whole["original"], "the old brain lives on in the forensic folder"

        [run] = [r for r in deployed.runs() if r.status.value == "interrupted"]
        resumed = deployed.rollbot("resume", run.id)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert f"engine is healthy on {HEALTHY}" in resumed.stdout
        assert digests(deployed.brain) == whole["snapshot"], "resumed from mid-swap: the snapshot is in place"
        [forensic_brain] = (deployed.brain.parent / "rollbot-forensic").glob("*/brain.sqlite")
        assert digests(forensic_brain) == whole["original"]
        assert deployed.container().attrs["Config"]["Image"].endswith(f":{HEALTHY}")
