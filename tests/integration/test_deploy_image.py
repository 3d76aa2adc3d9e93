"""rollbot as it runs in production: its image, built here from the Dockerfile, started with
`docker compose -f deploy/docker-compose.yml up` beside the demo Engine, and a rollback driven
through the container against the real daemon."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx

from tests.integration.demo import (
    HEALTHY,
    REPOSITORY,
    ROOT,
    Deployment,
    build_demo_images,
    changed_lines,
    deployment,
    free_port,
    wait_until,
)
from tests.integration.rollbot_image import build_rollbot_image
from tests.slackapi.signing import post, signed_headers, slash_command

DEPLOY = ROOT / "deploy"
# A bad patch release that did not migrate the brain, so the Engine's brain (mounted from the
# host) stays readable by 2.3.1 and the rollback is image only.
BAD_PATCH = "2.3.2"
ROLLBOT_UID = 10001
SIGNING_SECRET = "test-signing-secret-deploy-5d1e-a8c3f2"
# Only the probe interval: the image's 15 s would make the test wait for the first probe.
TEST_OVERRIDE = "services:\n  rollbot:\n    healthcheck:\n      interval: 1s\n"


@dataclass
class Container:
    """The rollbot service of a `docker compose -f deploy/docker-compose.yml` project."""

    project: str
    folder: Path
    port: int

    def compose(self, *arguments: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "docker",
                "compose",
                "--project-name",
                self.project,
                "--project-directory",
                str(self.folder),
                "--file",
                str(DEPLOY / "docker-compose.yml"),
                "--file",
                str(self.folder / "test-override.yml"),
                *arguments,
            ],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "--no-TTY", "rollbot", *command, check=False)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "rollbot", check=False).stdout

    def attrs(self) -> dict[str, Any]:
        [container_id] = self.compose("ps", "--all", "--quiet", "rollbot").stdout.split()
        return docker.from_env().containers.get(container_id).attrs


@contextmanager
def rollbot_container(engine: Deployment, image: str) -> Iterator[Container]:
    """A project folder as a user would make it (.env, rollbot.yaml) and the service up in it."""
    folder = engine.folder.parent / "rollbot"
    folder.mkdir()
    config = (DEPLOY / "rollbot.yaml").read_text().replace("/srv/engine", str(engine.folder))
    assert str(engine.brain) in config
    (folder / "rollbot.yaml").write_text(config)
    port = free_port()
    (folder / ".env").write_text(
        "\n".join(
            [
                "SLACK_BOT_TOKEN=xoxb-test-000000000000-deploy",
                f"SLACK_SIGNING_SECRET={SIGNING_SECRET}",
                "SLACK_API_URL=http://127.0.0.1:9/api/",  # the container's own loopback: no Slack here
                f"ENGINE_DIR={engine.folder}",
                f"BRAIN_DIR={engine.folder / 'data'}",
                f"ENGINE_NETWORK={engine.project}_default",
                f"DOCKER_GID={os.stat('/var/run/docker.sock').st_gid}",
                f"ROLLBOT_IMAGE={image}",
                f"ROLLBOT_PORT={port}",
            ]
        )
        + "\n"
    )
    (folder / "test-override.yml").write_text(TEST_OVERRIDE)
    bot = Container(f"{engine.project}-rollbot", folder, port)
    try:
        up = bot.compose("up", "--detach", "--wait", "--wait-timeout", "90", check=False)
        assert up.returncode == 0, up.stdout + up.stderr + bot.logs()
        yield bot
    finally:
        bot.compose("down", "--volumes", "--timeout", "30", check=False)


def test_compose_deployed_image_rolls_back_the_engine(tmp_path: Path) -> None:
    image = build_rollbot_image()
    build_demo_images({BAD_PATCH: (True, 1)})
    with deployment(tmp_path, running=BAD_PATCH, brain=True) as engine:
        assert engine.wait_for_answer().status_code == 503, "the bad patch release should fail /health"
        engine.remember(3)
        # What the deploy file's comments ask of the host: uid 10001 may write both folders.
        subprocess.run(["chown", "-R", str(ROLLBOT_UID), str(engine.folder)], check=True)
        compose_before = engine.compose_file.read_text()
        old_engine = engine.container().id
        with rollbot_container(engine, image) as bot:
            attrs = bot.attrs()
            assert attrs["State"]["Health"]["Status"] == "healthy"
            processes = docker.from_env().containers.get(attrs["Id"]).top(ps_args="-o pid,uid,args")["Processes"]
            [serve_uid] = [uid for _, uid, args in processes if "rollbot serve --host 0.0.0.0" in args]
            assert serve_uid == str(ROLLBOT_UID), "rollbot serve runs as the image's unprivileged user"
            assert str(os.stat("/var/run/docker.sock").st_gid) in bot.exec("id", "-G").stdout.split()
            root = bot.exec("cat", "/proc/mounts").stdout.splitlines()[0].split()
            assert root[1] == "/" and "ro" in root[3].split(","), "the root filesystem should be read-only"
            status = bot.exec("cat", "/proc/self/status").stdout
            assert "CapBnd:\t0000000000000000" in status and "NoNewPrivs:\t1" in status

            assert httpx.get(f"http://127.0.0.1:{bot.port}/healthz", timeout=5).json() == {"ok": True}
            # Slack's endpoint is there and checks signatures. A signed command is not sent: Bolt
            # asks the Web API (auth.test) first, and the test's fake Slack is on the host's loopback.
            body = slash_command("help", "U0REQUEST1", "C0PLANS000", "https://hooks.slack.com/commands/T0/1/x")
            forged = post(f"http://127.0.0.1:{bot.port}/slack/events", body, signed_headers(body, "not-the-secret"))
            assert forged.status == 401

            snapped = bot.exec("rollbot", "snapshot", "engine")
            assert snapped.returncode == 0, snapped.stdout + snapped.stderr
            [snapshot] = engine.snapshots.glob("*.sqlite")
            assert snapshot.stat().st_uid == ROLLBOT_UID, "written through the brain folder's same-path mount"

            done = bot.exec("rollbot", "rollback", "engine", HEALTHY, "--yes", "--reason", "health failing since 2.3.2")
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"engine is healthy on {HEALTHY}" in done.stdout

            [run] = json.loads(bot.exec("rollbot", "history", "--json").stdout)
            assert run["status"] == "succeeded" and (run["from_version"], run["to_version"]) == (BAD_PATCH, HEALTHY)
            assert all(step["status"] == "succeeded" for step in run["steps"])
            captured = bot.exec("cat", run["summary"]["log_file"])
            assert f"engine {BAD_PATCH}: ERROR health check failed" in captured.stdout

            # SIGTERM reaches rollbot as PID 1 and it stops by itself, well within the timeout.
            bot.compose("stop", "--timeout", "60")
            assert bot.attrs()["State"]["ExitCode"] == 0, bot.logs()
            assert "rollbot is stopping" in bot.logs()

        container = engine.container().attrs
        assert container["Id"] != old_engine, "the Engine was recreated by the compose inside rollbot's container"
        assert container["Config"]["Image"] == f"{REPOSITORY}:{HEALTHY}"
        [mount] = container["Mounts"]
        assert mount["Source"] == str(engine.folder / "data"), "compose in the container resolved ./data on the host"
        wait_until(lambda: (a := engine.health()) is not None and a.status_code == 200, 30, what="/health ok")
        assert engine.health().json() == {"status": "ok", "version": HEALTHY, "brain_schema": 1}
        with sqlite3.connect(engine.brain) as brain:
            assert brain.execute("SELECT count(*) FROM episodes").fetchone() == (3,), "the brain was kept"
        assert changed_lines(compose_before, engine.compose_file.read_text()) == [
            (f"    image: {REPOSITORY}:{BAD_PATCH}\n", f"    image: {REPOSITORY}:{HEALTHY}\n")
        ]
