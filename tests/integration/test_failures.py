"""Runs that go wrong: a target that never gets healthy, and the bot killed mid-run."""

import subprocess
import time
from pathlib import Path

from storage import RunStatus, StepStatus
from tests.integration.brains import digests
from tests.integration.demo import BROKEN, HEALTHY, REPOSITORY, build_demo_images, deployment, kill, wait_until

HEALTH_TIMEOUT = 6
NEVER_HEALTHY = "2.3.0"  # reads brain schema 1, like 2.3.1, but /health never says ok


def test_target_that_never_gets_healthy_fails_within_the_health_timeout(tmp_path: Path) -> None:
    with deployment(tmp_path, running=HEALTHY, health_timeout=HEALTH_TIMEOUT) as deployed:
        done = deployed.rollbot("rollback", "engine", BROKEN, "--yes")

        assert done.returncode == 1, done.stdout + done.stderr
        assert f"engine is now on {BROKEN} but unhealthy" in done.stderr
        # Compose as the operator runs it, from the project's folder (a `-f FILE` would drop an override)
        assert f"Next: read `cd {deployed.folder} && docker compose logs engine`" in done.stderr
        assert "Traceback" not in done.stdout + done.stderr

        # 2.4.0 is newer than 2.3.1: the run is an upgrade, and the rollback back offered after it is journaled too
        run = deployed.journal().run(next(run.id for run in deployed.runs() if run.kind == "upgrade"))
        assert run.status is RunStatus.FAILED
        assert run.current_step == "verify_health"
        health_step = run.steps[-1]
        assert health_step.status is StepStatus.FAILED
        assert health_step.seconds is not None and HEALTH_TIMEOUT - 1 <= health_step.seconds <= HEALTH_TIMEOUT + 3
        assert "HTTP 503" in (health_step.error or "")
        assert "unhealthy" in (run.summary.get("service_state") or "")
        assert deployed.container().attrs["Config"]["Image"] == f"{REPOSITORY}:{BROKEN}"


def test_brain_rollback_to_a_version_that_never_gets_healthy_runs_the_previous_one_again(tmp_path: Path) -> None:
    """2.4.0 migrated the brain; the rollback restores the snapshot for 2.3.0, which never gets
    healthy. The original brain goes back and 2.4.0 runs on it again, degraded as it was before
    the rollback (its /health answers 503 as before), and the exit code says the run failed."""
    build_demo_images({NEVER_HEALTHY: (True, 1)})
    with deployment(tmp_path, running=HEALTHY, brain=True, health_timeout=HEALTH_TIMEOUT) as deployed:
        deployed.remember(2)
        assert deployed.rollbot("snapshot", "engine").returncode == 0
        deployed.deploy(BROKEN)
        deployed.remember(2)
        before = deployed.health()
        assert before is not None and before.status_code == 503
        original = digests(deployed.brain)
        compose_before = deployed.compose_file.read_text()

        done = deployed.rollbot("rollback", "engine", NEVER_HEALTHY, "--yes", "--brain", "restore")

        assert done.returncode == 1, done.stdout + done.stderr
        output = done.stdout + done.stderr
        assert f"engine is running {BROKEN} again (degraded, as before the rollback)" in output
        assert "the original brain is back at" in output and "Traceback" not in output
        wait_until(
            lambda: (answer := deployed.health()) is not None and answer.status_code == 503,
            30,
            what=f"{BROKEN} answering /health again",
        )
        assert deployed.health().json() == before.json(), "the same version on the same brain as before"
        container = deployed.container().attrs
        assert container["State"]["Running"] and container["Config"]["Image"] == f"{REPOSITORY}:{BROKEN}"
        assert deployed.compose_file.read_text() == compose_before
        assert digests(deployed.brain) == original, "the original brain, not the snapshot"

        [run] = deployed.history_json()
        assert run["status"] == RunStatus.FAILED and run["current_step"] == "verify_health"
        assert run["summary"]["after_failure"] == f"started {BROKEN} again"
        journaled = [e.kind for e in deployed.journal().run(str(run["id"])).events]
        assert {"brain.put_back", "recovery.compose_put_back", "recovery.previous_started"} <= set(journaled)


def test_killed_cli_leaves_a_run_reported_as_interrupted_at_its_step(tmp_path: Path) -> None:
    with deployment(tmp_path, running=BROKEN, drain_seconds=20) as deployed:
        process = subprocess.Popen(
            deployed.command("rollback", "engine", HEALTHY, "--yes"),
            cwd=deployed.folder,
            env=deployed.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: _step_running(deployed, "stop"), timeout=60, what="the drain-stop step")
            time.sleep(0.5)
        finally:
            kill(process)

        history = deployed.rollbot("history")
        assert history.returncode == 0, history.stderr
        assert "was interrupted during step 'stop'" in history.stderr
        row = next(line for line in history.stdout.splitlines() if HEALTHY in line)
        assert "interrupted" in row and "at stop" in row

        [run] = deployed.history_json()
        assert run["status"] == RunStatus.INTERRUPTED
        assert run["current_step"] == "stop"
        assert [s["status"] for s in run["steps"]] == [
            "succeeded",
            "succeeded",
            "succeeded",
            "running",
            "pending",
            "pending",
        ]


def _step_running(deployed, name: str) -> bool:  # type: ignore[no-untyped-def]
    if not deployed.database.exists():
        return False
    runs = deployed.runs()
    return bool(runs) and runs[0].current_step == name
