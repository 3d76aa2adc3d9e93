"""An Engine deployment rollbot did not shape, for the integration tests: real Docker, real Compose.

It is laid out the way an Engine's owners lay it out, not the way rollbot's demo is:

- images built with no rollbot label (tests/integration/outside_engine/Dockerfile around the demo
  Engine's code), pushed to their own repository in the local registry;
- `docker-compose.yml` holds only the image and the environment; the port and the `./data`
  volume live in `docker-compose.override.yml`, which only Compose's discovery reads;
- `.env` sets `COMPOSE_PROJECT_NAME` (so the folder's name is not the project's name) and, with
  `image_in="env"`, the image's tag as `ENGINE_TAG`;
- a one-off container of the service (`docker compose run`), printing its own lines;
- optionally the runbook's own snapshot, taken by hand with `sqlite3 .backup`.

`outside_deployment()` is a context manager like `demo.deployment()`, and `Outside` offers the
same helpers as `demo.Deployment` (rollbot, journal, health…), with Compose run as the owners run it.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import docker

from tests.integration.demo import (
    BASE_IMAGE,
    BROKEN,
    DEMO_VERSIONS,
    EXAMPLE,
    HEALTHY,
    REGISTRY,
    Deployment,
    free_port,
    source_digest,
)

DOCKERFILE = Path(__file__).resolve().parent / "outside_engine" / "Dockerfile"
REPOSITORY = f"{REGISTRY}/outside/engine-{source_digest(DOCKERFILE, EXAMPLE / 'engine' / 'engine.py')}"
ONEOFF_MARKER = "one-off of the engine service"
HAND_SNAPSHOT = "brain-pre-upgrade.db"  # the runbook's name, in the brain's own folder
ImageIn = Literal["base", "override", "env"]

__all__ = ["BROKEN", "HEALTHY", "REPOSITORY", "Outside", "build_outside_images", "outside_deployment"]


def build_outside_images(versions: dict[str, tuple[bool, int]] = DEMO_VERSIONS) -> None:
    """Build and push the label-free Engine images, under the lock the demo images use (xdist)."""
    with open(Path(tempfile.gettempdir()) / "rollbot-demo-images.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for version, (broken, schema) in versions.items():
            tag = f"{REPOSITORY}:{version}"
            subprocess.run(
                [
                    "docker",
                    "build",
                    "--quiet",
                    "--file",
                    str(DOCKERFILE),
                    "--build-arg",
                    f"BASE_IMAGE={BASE_IMAGE}",
                    "--build-arg",
                    f"ENGINE_VERSION={version}",
                    "--build-arg",
                    f"ENGINE_BROKEN={1 if broken else 0}",
                    "--build-arg",
                    f"ENGINE_BRAIN_SCHEMA={schema}",
                    "--tag",
                    tag,
                    str(EXAMPLE / "engine"),
                ],
                check=True,
                capture_output=True,
                env={**os.environ, "DOCKER_BUILDKIT": "0"},
            )
            subprocess.run(["docker", "push", "--quiet", tag], check=True, capture_output=True)


@dataclass
class Outside(Deployment):
    """The owners' layout: Compose runs in the folder with no `--file`, as they run it."""

    image_in: ImageIn = "base"
    oneoff_name: str | None = None

    @property
    def override_file(self) -> Path:
        return self.folder / "docker-compose.override.yml"

    @property
    def env_file(self) -> Path:
        return self.folder / ".env"

    @property
    def hand_snapshot(self) -> Path:
        return self.folder / "data" / HAND_SNAPSHOT

    @property
    def image_file(self) -> Path:
        """The file whose line says which version runs."""
        return {"base": self.compose_file, "override": self.override_file, "env": self.env_file}[self.image_in]

    def files(self) -> dict[str, str]:
        """Both compose files and `.env`, by name: what a test compares before and after."""
        return {path.name: path.read_text() for path in (self.compose_file, self.override_file, self.env_file)}

    def compose(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", *arguments], cwd=self.folder, capture_output=True, text=True, check=check
        )

    def containers(self) -> list[docker.models.containers.Container]:
        """The service's containers (not the one-off), by the labels Compose gave them."""
        labels = [
            f"com.docker.compose.project={self.project}",
            "com.docker.compose.service=engine",
            "com.docker.compose.oneoff=False",
        ]
        return docker.from_env().containers.list(all=True, filters={"label": labels})

    def container(self) -> docker.models.containers.Container:
        found = self.containers()
        assert len(found) == 1, f"expected one engine container, found {[c.name for c in found]}"
        return found[0]

    def oneoff(self) -> docker.models.containers.Container:
        assert self.oneoff_name is not None, "this deployment has no one-off container"
        return docker.from_env().containers.get(self.oneoff_name)

    def deploy(self, version: str) -> None:
        """What the owners' deploy does: bump the version where it is written, `up -d`."""
        text = self.image_file.read_text()
        lines = text.splitlines(keepends=True)
        key = "ENGINE_TAG=" if self.image_in == "env" else "image:"
        [number] = [n for n, line in enumerate(lines) if line.strip().startswith(key)]
        line = lines[number]
        old = line.split("=", 1)[1].split()[0] if self.image_in == "env" else line.split(":")[-1].split()[0]
        lines[number] = line.replace(old, version, 1)
        self.image_file.write_text("".join(lines))
        self.compose("up", "--detach", "engine")
        self.wait_for_answer()

    def take_hand_snapshot(self) -> Path:
        """The runbook's snapshot, by hand: `sqlite3 data/brain.sqlite ".backup data/brain-pre-upgrade.db"`."""
        subprocess.run(
            ["sqlite3", "data/brain.sqlite", f".backup data/{HAND_SNAPSHOT}"],
            cwd=self.folder,
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.hand_snapshot

    def start_oneoff(self) -> None:
        """`docker compose run -d` of the service: same image and volume, no ports, its own lines."""
        self.oneoff_name = f"{self.project}-oneoff"
        self.compose(
            "run",
            "--detach",
            "--no-deps",
            "--name",
            self.oneoff_name,
            "engine",
            "sh",
            "-c",
            f"echo '{ONEOFF_MARKER}'; exec sleep 3600",
        )


def _compose_texts(image_in: ImageIn, version: str, port: int, migrates: bool = True) -> tuple[str, str, str]:
    """docker-compose.yml, docker-compose.override.yml and the image line's place."""
    image = f"{REPOSITORY}:${{ENGINE_TAG}}" if image_in == "env" else f"{REPOSITORY}:{version}"
    base_image = "" if image_in == "override" else f"    image: {image}   # the release that is live\n"
    base = (
        "# The Engine, as its owners wrote it. Local settings live in docker-compose.override.yml.\n"
        "services:\n"
        "  engine:\n"
        f"{base_image}"
        "    environment:\n"
        '      ENGINE_DRAIN_SECONDS: "1"\n'
        + ("" if migrates else '      ENGINE_BRAIN_SCHEMA: "1"   # this release ships no migration\n')
        + "    restart: unless-stopped\n"
    )
    override_image = (
        f"    image: {REPOSITORY}:{version}  # this host pins its own release\n" if image_in == "override" else ""
    )
    override = (
        "# This host: the port the Engine answers on and the folder its brain lives in.\n"
        "services:\n"
        "  engine:\n"
        f"{override_image}"
        "    ports:\n"
        f'      - "127.0.0.1:{port}:8080"\n'
        "    volumes:\n"
        "      - ./data:/data   # /data/brain.sqlite\n"
    )
    return base, override, image


def _rollbot_yaml(port: int, brain: bool, health_timeout: int, brain_extra: str = "") -> str:
    text = (
        "targets:\n"
        "  engine:\n"
        "    environment: staging\n"
        "    compose_file: docker-compose.yml\n"
        "    service: engine\n"
        f"    health_url: http://127.0.0.1:{port}/health\n"
        "    drain_timeout: 10\n"
        f"    health_timeout: {health_timeout}\n"
        "    approvers: [U0APPROVER]\n"
    )
    if brain:
        text += "    brain:\n      path: data/brain.sqlite\n      snapshots_dir: data/snapshots\n" + brain_extra
    return text


@contextmanager
def outside_deployment(
    tmp_path: Path,
    running: str = BROKEN,
    *,
    before: Sequence[str] = (),
    hand_snapshot: bool = False,
    image_in: ImageIn = "base",
    brain: bool = False,
    oneoff: bool = True,
    health_timeout: int = 30,
    migrates: bool = True,
    brain_extra: str = "",
) -> Iterator[Outside]:
    """The owners' Engine, up on `running`. `before`: versions deployed (and up) first, e.g.
    (HEALTHY,) for a real upgrade; `hand_snapshot` takes the runbook's snapshot just before
    `running` is deployed. With `brain`, the rollbot target has the brain configured (the
    Engine always keeps its brain in ./data through the override's volume). With `migrates=False`
    no version migrates the brain past schema 1: 2.4.0 is a bad release that changed no schema.
    `brain_extra`: more lines of the brain's config (e.g. `affected:`), indented under `brain:`."""
    build_outside_images()
    folder = tmp_path / "owners"
    (folder / "data").mkdir(parents=True)
    project = f"outside-{secrets.token_hex(4)}"
    port = free_port()
    first = before[0] if before else running
    base, override, _ = _compose_texts(image_in, first, port, migrates)
    (folder / "docker-compose.yml").write_text(base)
    (folder / "docker-compose.override.yml").write_text(override)
    env = f"# Compose reads this file itself.\nCOMPOSE_PROJECT_NAME={project}\n"
    (folder / ".env").write_text(env + (f"ENGINE_TAG={first}  # the live release\n" if image_in == "env" else ""))
    (folder / "rollbot.yaml").write_text(_rollbot_yaml(port, brain, health_timeout, brain_extra))
    deployed = Outside(folder, project, port, image_in=image_in)
    try:
        deployed.compose("up", "--detach", "engine")
        deployed.wait_for_answer()
        for version in [*before[1:], running] if before else []:
            if hand_snapshot and version == running:
                deployed.take_hand_snapshot()
            deployed.deploy(version)
        if oneoff:
            deployed.start_oneoff()
        yield deployed
    finally:
        deployed.compose("down", "--timeout", "1", "--volumes", "--remove-orphans", check=False)
        if deployed.oneoff_name:
            subprocess.run(["docker", "rm", "--force", deployed.oneoff_name], capture_output=True, check=False)
        shutil.rmtree(folder / "evidence", ignore_errors=True)
