"""A real image rollback of the demo Engine, end to end, through the `rollbot` command."""

from pathlib import Path

from storage import RunStatus, StepStatus
from tests.integration.demo import BROKEN, HEALTHY, REPOSITORY, changed_lines, deployment, wait_until

STEPS = ["capture_logs", "set_image_tag", "pull", "stop", "start", "verify_health"]


def test_unhealthy_release_is_rolled_back(tmp_path: Path) -> None:
    with deployment(tmp_path, running=BROKEN) as deployed:
        assert deployed.wait_for_answer().status_code == 503, "the broken release should fail /health"
        compose_before = deployed.compose_file.read_text()
        old_container = deployed.container().id

        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "health failing since upgrade")

        assert done.returncode == 0, done.stdout + done.stderr
        assert f"engine is healthy on {HEALTHY}" in done.stdout

        container = deployed.container()
        assert container.id != old_container
        assert container.attrs["Config"]["Image"] == f"{REPOSITORY}:{HEALTHY}"
        assert container.attrs["State"]["Running"]
        wait_until(
            lambda: (answer := deployed.health()) is not None and answer.status_code == 200, 30, what="/health ok"
        )
        assert deployed.health().json() == {"status": "ok", "version": HEALTHY, "brain_schema": 1}

        changes = changed_lines(compose_before, deployed.compose_file.read_text())
        assert changes == [
            (
                f"    image: {REPOSITORY}:{BROKEN}\n",
                f"    image: {REPOSITORY}:{HEALTHY}\n",
            )
        ]
        assert "# The release that is live." in deployed.compose_file.read_text()

        [run] = deployed.runs()
        run = deployed.journal().run(run.id)
        assert run.status is RunStatus.SUCCEEDED
        assert (run.from_version, run.to_version) == (BROKEN, HEALTHY)
        assert [step.name for step in run.steps] == STEPS
        for step in run.steps:
            assert step.status is StepStatus.SUCCEEDED, step
            assert step.started_at is not None and step.finished_at is not None
            assert step.started_at <= step.finished_at
        journaled = [(event.kind, event.details.get("step")) for event in run.events if event.kind.startswith("step.")]
        assert journaled == [(kind, name) for name in STEPS for kind in ("step.started", "step.finished")]

        log_file = Path(run.summary["log_file"])
        captured = log_file.read_text()
        assert f"engine {BROKEN}: starting" in captured
        assert f"engine {BROKEN}: ERROR health check failed" in captured
        assert f"engine {HEALTHY}" not in captured
        assert str(log_file) in done.stdout

        postmortem = deployed.folder / "postmortems" / run.id / "postmortem.md"
        assert f"postmortem: {postmortem.resolve().as_uri()}" in done.stdout
        text = postmortem.read_text()
        assert f"rolled back {BROKEN} → {HEALTHY} [succeeded]" in text
        assert "Reason given: health failing since upgrade" in text
        assert "no data rolled back (image only)" in text
        for step in STEPS:
            assert f"step {step} started" in text and f"step {step} succeeded" in text
        attached = {path.name for path in postmortem.parent.iterdir()}
        assert {f"engine-{BROKEN}.log", f"engine-{BROKEN}.inspect.json", "journal.json", "health.json"} <= attached
        assert f"engine {BROKEN}: ERROR health check failed" in (postmortem.parent / f"engine-{BROKEN}.log").read_text()
