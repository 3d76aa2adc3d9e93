"""Compose as the Engine's owners run it: override file, `.env` naming the project, a one-off container.

Real Docker, real Compose v2, the local registry; the deployment is `outside.outside_deployment`.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import docker
import pytest

from bot.adapters.compose import ComposeCli
from bot.adapters.docker_host import DockerHost
from bot.config import load_config
from bot.planning.brain_plan import BrainChoice
from bot.planning.plan import RollbackRequest, Systems, make_plan
from bot.planning.preflight import CheckResult
from storage import RunStatus
from tests.integration.demo import BASE_IMAGE, changed_lines, wait_until
from tests.integration.outside import BROKEN, HEALTHY, ONEOFF_MARKER, REPOSITORY, Outside, outside_deployment


def plan_of(deployed: Outside, version: str = HEALTHY, brain: BrainChoice = BrainChoice.AUTO):  # type: ignore[no-untyped-def]
    """rollbot's plan for this deployment, made in this process with the real clients."""
    config = load_config(deployed.config_file)
    host = DockerHost()

    def compose_for(target):  # type: ignore[no-untyped-def]
        return ComposeCli(target.compose_file, host.service_container_ids, target.compose_files)

    return make_plan(RollbackRequest("engine", version, "cli:test", brain=brain), config, Systems(host, compose_for))


def check(plan, name: str):  # type: ignore[no-untyped-def]
    [found] = [c for c in plan.checks if c.name == name]
    return found


def brain_schema(path: Path) -> int:
    with closing(sqlite3.connect(path)) as brain:
        return int(brain.execute("PRAGMA user_version").fetchone()[0])


def test_rollback_on_the_override_layout_keeps_port_volume_files_and_one_off(tmp_path: Path) -> None:
    """The issue's scenario: 2.3.1 upgraded to a broken 2.4.0 that migrated the brain, with the
    runbook's hand-made snapshot; the rollback restores it and the Engine comes back on the
    override's port with its brain through the override's volume. The one-off shares ./data, so
    it holds the brain: the restore is refused naming it, and goes ahead once it is stopped;
    rollbot never stops, starts or removes it."""
    with outside_deployment(tmp_path, BROKEN, before=(HEALTHY,), hand_snapshot=True, brain=True) as deployed:
        assert deployed.wait_for_answer().status_code == 503
        assert brain_schema(deployed.brain) == 2 and brain_schema(deployed.hand_snapshot) == 1
        files_before = deployed.files()
        oneoff = deployed.oneoff()
        oneoff_started = oneoff.attrs["State"]["StartedAt"]
        assert "io.rollbot.brain-schema" not in deployed.container().image.labels

        refused = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", "--brain", "restore")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"container {oneoff.name} mounts" in refused.stderr and deployed.files() == files_before
        oneoff.reload()
        assert oneoff.status == "running" and oneoff.attrs["State"]["StartedAt"] == oneoff_started
        oneoff.stop(timeout=1)
        oneoff.reload()
        oneoff_finished = oneoff.attrs["State"]["FinishedAt"]

        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", "--brain", "restore")

        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        wait_until(
            lambda: (answer := deployed.health()) is not None and answer.status_code == 200, 30, what="/health ok"
        )
        assert deployed.health().json() == {"status": "ok", "version": HEALTHY, "brain_schema": 1}
        assert deployed.container().attrs["Config"]["Image"] == f"{REPOSITORY}:{HEALTHY}"
        assert brain_schema(deployed.brain) == 1, "the brain seen through the override's volume is the snapshot"

        after = deployed.files()
        assert changed_lines(files_before["docker-compose.yml"], after["docker-compose.yml"]) == [
            (
                f"    image: {REPOSITORY}:{BROKEN}   # the release that is live\n",
                f"    image: {REPOSITORY}:{HEALTHY}   # the release that is live\n",
            )
        ]
        assert after["docker-compose.override.yml"] == files_before["docker-compose.override.yml"]
        assert after[".env"] == files_before[".env"]

        run, refusal = deployed.runs()
        assert refusal.status is RunStatus.REFUSED
        run = deployed.journal().run(run.id)
        assert run.status is RunStatus.SUCCEEDED
        captured = Path(run.summary["log_file"]).read_text()
        assert f"engine {BROKEN}: starting" in captured
        assert f"engine {BROKEN}: ERROR health check failed" in captured
        assert f"engine {HEALTHY}:" not in captured, "2.3.1 ran in the container before; not the bad version's"
        assert ONEOFF_MARKER not in captured

        oneoff.reload()
        assert oneoff.status == "exited" and oneoff.attrs["State"]["FinishedAt"] == oneoff_finished
        assert oneoff.attrs["Config"]["Image"] == f"{REPOSITORY}:{BROKEN}", "the one-off is left as it was"


def test_image_tag_in_env_is_switched_there(tmp_path: Path) -> None:
    """`image: repo:${ENGINE_TAG}` with ENGINE_TAG in .env: the .env line is the one edited."""
    with outside_deployment(
        tmp_path, BROKEN, before=(HEALTHY,), hand_snapshot=True, brain=True, image_in="env", oneoff=False
    ) as deployed:
        files_before = deployed.files()
        plan = plan_of(deployed, brain=BrainChoice.RESTORE)
        assert plan.refusal is None, plan.checks
        assert (plan.image_file, plan.image_variable) == (str(deployed.env_file), "ENGINE_TAG")

        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", "--brain", "restore")

        assert done.returncode == 0, done.stdout + done.stderr
        wait_until(
            lambda: (answer := deployed.health()) is not None and answer.status_code == 200, 30, what="/health ok"
        )
        after = deployed.files()
        assert changed_lines(files_before[".env"], after[".env"]) == [
            (f"ENGINE_TAG={BROKEN}  # the live release\n", f"ENGINE_TAG={HEALTHY}  # the live release\n")
        ]
        assert after["docker-compose.yml"] == files_before["docker-compose.yml"]
        assert after["docker-compose.override.yml"] == files_before["docker-compose.override.yml"]


def test_plan_edits_the_override_that_sets_the_image_and_finds_the_service(tmp_path: Path) -> None:
    """The image set in the override: that file's line is the one to edit; Compose's project
    name from .env finds the service's container, never the one-off."""
    with outside_deployment(tmp_path, BROKEN, image_in="override") as deployed:
        plan = plan_of(deployed)
        assert plan.refusal is None, plan.checks
        assert plan.image_file == str(deployed.override_file)
        assert plan.container_ids == (deployed.container().id,)
        assert deployed.oneoff().id not in plan.container_ids
        assert check(plan, "container started from these files").result is CheckResult.PASSED
        assert f"project {deployed.project}" in check(plan, "compose file names the service").detail


def test_plan_warns_when_the_running_container_was_not_started_from_these_files(tmp_path: Path) -> None:
    with outside_deployment(tmp_path, BROKEN, oneoff=False) as deployed:
        text = deployed.override_file.read_text()
        deployed.override_file.write_text(
            text.replace("    ports:\n", '    environment:\n      EXTRA: "1"\n    ports:\n')
        )
        plan = plan_of(deployed)
        hashed = check(plan, "container started from these files")
        assert hashed.result is CheckResult.WARNING
        assert "docker-compose.override.yml" in hashed.detail and "config hash" in hashed.detail
        assert plan.refusal is None, "a warning, not a refusal"


def test_image_from_a_merge_key_is_refused_at_preflight(tmp_path: Path) -> None:
    with outside_deployment(tmp_path, BROKEN, oneoff=False) as deployed:
        text = deployed.compose_file.read_text()
        image_line = next(line for line in text.splitlines(keepends=True) if "image:" in line)
        merged = (
            "x-engine: &engine\n"
            + image_line.replace("    image:", "  image:")
            + text.replace(image_line, "    <<: *engine\n")
        )
        deployed.compose_file.write_text(merged)
        before = deployed.files()
        plan = plan_of(deployed)
        assert plan.refusal is not None and "merge key" in plan.refusal
        assert check(plan, "compose file names the service").result is CheckResult.FAILED
        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", "--brain", "keep")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "merge key" in done.stdout + done.stderr and "Traceback" not in done.stdout + done.stderr
        assert deployed.files() == before


# --- logs --------------------------------------------------------------------------------------


@pytest.fixture
def crash_looping() -> str:
    """A container that prints one line per start and exits, restarted by Docker each time."""
    client = docker.from_env()
    container = client.containers.run(
        BASE_IMAGE,
        ["sh", "-c", "echo start-$(cat /proc/sys/kernel/random/uuid); exit 3"],
        detach=True,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 4},
    )
    try:
        yield container.id
    finally:
        container.remove(force=True)


def test_logs_keep_the_lines_from_before_the_restarts(tmp_path: Path, crash_looping: str) -> None:
    client = docker.from_env()
    wait_until(
        lambda: (
            client.containers.get(crash_looping).attrs["RestartCount"] >= 4
            and client.containers.get(crash_looping).status == "exited"
        ),
        60,
        0.3,
        what="four restarts",
    )
    destination = tmp_path / "engine.log"
    DockerHost().save_logs([crash_looping], destination, 20 * 1024 * 1024)
    starts = [line for line in destination.read_text().splitlines() if " start-" in line]
    assert len(starts) == 5, starts  # the first start and four restarts
    assert len({line.split("start-")[1] for line in starts}) == 5


def test_logs_are_capped_with_both_ends_kept(tmp_path: Path) -> None:
    client = docker.from_env()
    script = "i=0; while [ $i -lt 20000 ]; do echo \"line $i $(printf '%060d' $i)\"; i=$((i+1)); done"
    container = client.containers.run(BASE_IMAGE, ["sh", "-c", script], detach=True)
    try:
        container.wait(timeout=120)
        destination = tmp_path / "engine.log"
        written = DockerHost().save_logs([container.id], destination, 100_000)
        data = destination.read_bytes()
        assert written == len(data) <= 100_000 + 300
        lines = data.decode().splitlines()
        assert lines[0].endswith(f"line 0 {0:060d}") and lines[-1].endswith(f"line 19999 {19999:060d}")
        [marker] = [line for line in lines if line.startswith("----- rollbot cut")]
        assert "cap of 100000 bytes" in marker
        assert f"line 10000 {10000:060d}" not in data.decode()
    finally:
        container.remove(force=True)


def test_logs_of_every_container_of_a_scaled_service_never_the_one_off(tmp_path: Path) -> None:
    """scale 2 plus a one-off, in a project named by .env: Compose's answer and its labels find
    exactly the two service containers, and the log holds both."""
    folder = tmp_path / "scaled"
    folder.mkdir()
    (folder / "docker-compose.yml").write_text(
        f"services:\n  worker:\n    image: {BASE_IMAGE}\n"
        '    command: ["sh", "-c", "echo hello from $$HOSTNAME; exec sleep 3600"]\n'
    )
    project = f"scaled-{tmp_path.name[-8:].lower().replace('_', '')}"
    (folder / ".env").write_text(f"COMPOSE_PROJECT_NAME={project}\n")
    compose = ["docker", "compose"]
    try:
        subprocess.run([*compose, "up", "--detach", "--scale", "worker=2"], cwd=folder, check=True, capture_output=True)
        subprocess.run(
            [
                *compose,
                "run",
                "--detach",
                "--name",
                f"{project}-oneoff",
                "worker",
                "sh",
                "-c",
                f"echo '{ONEOFF_MARKER}'; exec sleep 3600",
            ],
            cwd=folder,
            check=True,
            capture_output=True,
        )
        host = DockerHost()
        cli = ComposeCli(folder / "docker-compose.yml", host.service_container_ids)
        assert cli.service("worker").project == project
        ids = cli.container_ids("worker")
        assert len(ids) == 2
        assert docker.from_env().containers.get(f"{project}-oneoff").id not in ids
        time.sleep(1)
        destination = tmp_path / "worker.log"
        host.save_logs(ids, destination, 20 * 1024 * 1024)
        text = destination.read_text()
        assert text.count("hello from") == 2 and text.count("===== ") == 2
        assert ONEOFF_MARKER not in text
    finally:
        subprocess.run([*compose, "down", "--timeout", "1", "--remove-orphans"], cwd=folder, capture_output=True)
        subprocess.run(["docker", "rm", "--force", f"{project}-oneoff"], capture_output=True)
