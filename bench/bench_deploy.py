"""The real things the benchmark drives: two healthy demo Engine images and Compose projects of them.

`build_images` builds the demo Engine (examples/demo/engine) twice, both healthy, into a
repository of the benchmark's own and pushes them to the local registry: `bench-old` reads brain
schema 1, `bench-new` migrates the brain forward to schema 2. A `Project` is the example compose
file and rollbot config made unique (project name, port, image) in a folder of its own, with the
`rollbot` CLI of this working tree run against it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench_health import is_ok

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "demo"
REGISTRY = os.environ.get("ROLLBOT_TEST_REGISTRY", "127.0.0.1:5000")
BASE_IMAGE = os.environ.get("ROLLBOT_TEST_BASE_IMAGE", "rollbot-test-base:bookworm")
REPOSITORY = f"{REGISTRY}/rollbot-bench/engine"
OLD, NEW = "bench-old", "bench-new"
SCHEMAS = {OLD: 1, NEW: 2}  # the newest brain schema each bench image reads
EXAMPLE_IMAGE = "127.0.0.1:5000/rollbot-demo/engine:2.4.0"
HEALTH_TIMEOUT = 180  # rollbot's health_timeout in the bench config


def require_docker() -> None:
    """Stop early, with the fix, when the daemon, Compose v2, the registry or the base image is missing."""
    checks = [
        (["docker", "info"], "no Docker daemon answers `docker info`"),
        (["docker", "compose", "version"], "Compose v2 (`docker compose`) is not installed"),
        (["docker", "image", "inspect", BASE_IMAGE], f"the base image {BASE_IMAGE} is not built"),
    ]
    problems = [why for command, why in checks if subprocess.run(command, capture_output=True).returncode]
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except httpx.HTTPError as error:
        problems.append(f"no registry at {REGISTRY}: {error}")
    if problems:
        raise SystemExit("; ".join(problems) + " — run `bash .ci/setup.sh` first")


def build_images() -> None:
    """Build and push bench-old (schema 1) and bench-new (schema 2), both answering /health ok."""
    for tag, schema in SCHEMAS.items():
        image = f"{REPOSITORY}:{tag}"
        subprocess.run(
            [
                "docker",
                "build",
                "--quiet",
                "--build-arg",
                f"BASE_IMAGE={BASE_IMAGE}",
                "--build-arg",
                f"ENGINE_VERSION={tag}",
                "--build-arg",
                "ENGINE_BROKEN=0",
                "--build-arg",
                f"ENGINE_BRAIN_SCHEMA={schema}",
                "--tag",
                image,
                str(EXAMPLE / "engine"),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        subprocess.run(["docker", "push", "--quiet", image], check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _replace(text: str, old: str, new: str, where: str) -> str:
    if old not in text:
        raise SystemExit(f"{where} no longer contains {old!r}; update bench/bench_deploy.py")
    return text.replace(old, new)


@dataclass
class Project:
    """One Compose project of the demo Engine with its brain folder, rollbot config and journal."""

    folder: Path
    name: str
    port: int

    @classmethod
    def create(cls, parent: Path, running: str, drain_seconds: float) -> Project:
        """Write the compose file and rollbot config; the Engine is not started yet."""
        project = cls(parent / f"project-{secrets.token_hex(3)}", f"rbbench-{secrets.token_hex(4)}", free_port())
        project.data.mkdir(parents=True)
        compose = (EXAMPLE / "docker-compose.yml").read_text()
        for old, new in [
            ("name: rollbot-demo", f"name: {project.name}"),
            (EXAMPLE_IMAGE, f"{REPOSITORY}:{running}"),
            ("127.0.0.1:8080:8080", f"127.0.0.1:{project.port}:8080"),
            ('ENGINE_DRAIN_SECONDS: "2"', f'ENGINE_DRAIN_SECONDS: "{drain_seconds}"'),
        ]:
            compose = _replace(compose, old, new, "examples/demo/docker-compose.yml")
        project.compose_file.write_text(compose)
        config = (EXAMPLE / "rollbot.yaml").read_text()
        for old, new in [
            ("http://127.0.0.1:8080/health", project.health_url),
            ("health_timeout: 60", f"health_timeout: {HEALTH_TIMEOUT}"),
        ]:
            config = _replace(config, old, new, "examples/demo/rollbot.yaml")
        (project.folder / "rollbot.yaml").write_text(config)
        return project

    @property
    def compose_file(self) -> Path:
        return self.folder / "docker-compose.yml"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def brain(self) -> Path:
        return self.data / "brain.sqlite"

    @property
    def runbook_snapshot(self) -> Path:
        return self.data / "brain-pre-upgrade.db"

    @property
    def snapshots(self) -> Path:
        return self.data / "snapshots"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def compose(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", "compose", "-f", str(self.compose_file), *arguments],
            cwd=self.folder,
            capture_output=True,
            text=True,
        )
        if check and done.returncode:
            raise RuntimeError(f"docker compose {' '.join(arguments)} exited {done.returncode}: {done.stderr[-800:]}")
        return done

    def set_tag(self, tag: str) -> None:
        """What a deploy (and the runbook's step 1) does to the compose file: switch the image tag."""
        text = self.compose_file.read_text()
        current = next(line for line in text.splitlines() if line.strip().startswith("image:"))
        self.compose_file.write_text(text.replace(current, f"    image: {REPOSITORY}:{tag}"))

    def deploy(self, tag: str) -> None:
        self.set_tag(tag)
        self.compose("up", "--detach", "engine")
        self.wait_healthy(tag)

    def wait_healthy(self, tag: str, timeout: float = 120) -> dict[str, Any]:
        """Until /health says ok on `tag`; returns its answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(self.health_url, timeout=2)
                if is_ok(answer) and answer.json().get("version") == tag:
                    return dict(answer.json())
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.health_url} did not answer ok on {tag} within {timeout:.0f}s")

    def remember(self, turns: int) -> None:
        """Turns through the running Engine, each writing a row to every memory table."""
        for turn in range(turns):
            url = f"http://127.0.0.1:{self.port}/remember"
            httpx.post(url, content=f"bench turn {turn}", timeout=10).raise_for_status()

    def rollbot(self, *arguments: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """The `rollbot` CLI of this working tree (not an installed copy), journal in the project folder."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBOT_", "SLACK_", "JIRA_"))}
        env.update(
            DATABASE_URL=f"sqlite:///{self.folder / 'rollbot.db'}",
            NO_COLOR="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        )
        command = [sys.executable, "-m", "bot", "--config", str(self.folder / "rollbot.yaml"), *arguments]
        return subprocess.run(command, cwd=self.folder, env=env, capture_output=True, text=True, timeout=timeout)

    def last_run(self) -> dict[str, Any]:
        done = self.rollbot("history", "--json", "--limit", "1")
        if done.returncode:
            raise RuntimeError(f"rollbot history failed: {done.stderr}")
        return dict(json.loads(done.stdout)[0])

    def down(self) -> None:
        self.compose("down", "--timeout", "2", "--volumes", "--remove-orphans", check=False)
