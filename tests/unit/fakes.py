"""Fakes of the outside systems, each honouring the contract of the Protocol it stands in for.

They share one small model of a Docker host: which image references the registry has, which
are on the host, and which containers exist. `FakeCompose` reads the real compose file on disk,
so what `up` starts is decided by the runner's edit, exactly as with `docker compose`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ruamel.yaml import YAML

from bot.config import Config, TargetConfig
from bot.docker_host import ContainerFacts, ImageLocation, ImageSource
from bot.errors import ComposeError, DockerError
from bot.health import HealthResult
from bot.plan import Systems
from bot.tags import ImageRef

REPO = "127.0.0.1:5000/rollbot-demo/engine"

COMPOSE_TEXT = f"""\
# The Engine, as a person wrote it.
name: demo

services:
  engine:
    # The release that is live. Deploys bump this tag.
    image: {REPO}:2.4.0   # bumped by CI
    ports:
      - "127.0.0.1:8080:8080"
    restart: unless-stopped
"""


@dataclass
class FakeDocker:
    """The daemon's view: images in the registry, images on this host, containers by id."""

    registry: set[str] = field(default_factory=set)
    host: set[str] = field(default_factory=set)
    containers: dict[str, ContainerFacts] = field(default_factory=dict)
    logs: dict[str, bytes] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    questions: list[str] = field(default_factory=list)
    unreachable: str | None = None

    def container(self, container_id: str) -> ContainerFacts | None:
        self._ask(f"container {container_id}")
        return self.containers.get(container_id)

    def locate_image(self, reference: str) -> ImageLocation:
        self._ask(f"locate {reference}")
        if reference in self.registry:
            return ImageLocation(ImageSource.REGISTRY, f"{reference} is in its registry")
        if reference in self.host:
            return ImageLocation(ImageSource.HOST, f"{reference} is on this host; nothing to pull")
        return ImageLocation(ImageSource.NOWHERE, f"{reference} is not in its registry nor on this host")

    def image_labels(self, reference: str) -> dict[str, str] | None:
        self._ask(f"labels {reference}")
        return dict(self.labels.get(reference, {})) if reference in self.host else None

    def save_logs(self, container_id: str, destination: Path) -> int:
        if container_id not in self.containers:
            raise DockerError(f"container {container_id[:12]} is gone; its logs cannot be captured")
        data = self.logs.get(container_id, b"")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
        return len(data)

    def _ask(self, question: str) -> None:
        """Every question is noted; an unreachable daemon answers none of them."""
        self.questions.append(question)
        if self.unreachable:
            raise DockerError(f"cannot reach the Docker daemon: {self.unreachable}")

    def run_container(self, container_id: str, image: str, name: str = "demo-engine-1") -> None:
        self.host.add(image)
        self.containers[container_id] = ContainerFacts(
            id=container_id, name=name, image=image, running=True, state="running",
            started_at=datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
        )


class FakeCompose:
    """`docker compose` for one compose file on a `FakeDocker` host.

    `pull` fetches what the file names from the registry, `stop` stops the service's
    container, `up` replaces it with a container of the image the file names *now*. A verb in
    `failures` raises `ComposeError` with that message; one in `interrupts` raises
    KeyboardInterrupt, as Ctrl-C would in the middle of the process.
    """

    def __init__(self, compose_file: Path, docker: FakeDocker, service_container: str | None = None) -> None:
        self.compose_file = compose_file
        self.docker = docker
        self.current: str | None = service_container
        self.failures: dict[str, str] = {}
        self.interrupts: set[str] = set()
        self.drain_timeouts: list[int] = []
        self._next_id = 1

    def container_id(self, service: str) -> str | None:
        self._hazards("ps")
        return self.current

    def pull(self, service: str) -> str:
        self._hazards("pull")
        image = self.configured_image(service)
        if image not in self.docker.registry:
            raise ComposeError(f"docker compose pull {service} exited 1: {image}: manifest unknown")
        self.docker.host.add(image)
        return f"{service} Pulled"

    def stop(self, service: str, drain_timeout: int) -> str:
        self._hazards("stop")
        self.drain_timeouts.append(drain_timeout)
        if self.current is not None:
            facts = self.docker.containers[self.current]
            self.docker.containers[self.current] = replace(facts, running=False, state="exited")
        return f"Container {service} Stopped"

    def up(self, service: str) -> str:
        self._hazards("up")
        image = self.configured_image(service)
        if image not in self.docker.host:
            if image not in self.docker.registry:
                raise ComposeError(f"docker compose up {service} exited 1: pull access denied for {image}")
            self.docker.host.add(image)
        if self.current is not None:
            del self.docker.containers[self.current]
        self.current = f"new{self._next_id}"
        self._next_id += 1
        self.docker.run_container(self.current, image)
        return f"Container {service} Started"

    def configured_image(self, service: str) -> str:
        document = YAML(typ="safe").load(self.compose_file.read_text(encoding="utf-8"))
        return str(document["services"][service]["image"])

    def running_image(self) -> str | None:
        """The image of the service's container when it is running, else None."""
        if self.current is None:
            return None
        facts = self.docker.containers[self.current]
        return facts.image if facts.running else None

    def _hazards(self, verb: str) -> None:
        if verb in self.interrupts:
            raise KeyboardInterrupt
        if verb in self.failures:
            raise ComposeError(self.failures[verb])


class FakeHealth:
    """/health of the service: healthy exactly when it runs one of `healthy_versions`."""

    def __init__(self, compose: FakeCompose, healthy_versions: set[str]) -> None:
        self._compose = compose
        self.healthy_versions = healthy_versions
        self.asked: list[tuple[str, float]] = []

    def wait_until_healthy(self, url: str, timeout: float) -> HealthResult:
        self.asked.append((url, timeout))
        image = self._compose.running_image()
        tag = ImageRef.parse(image).tag if image else None
        if tag in self.healthy_versions:
            return HealthResult(True, 200, '{"status": "ok"}', None, 2, 1.0)
        if image is None:
            return HealthResult(False, None, "", "ConnectError: connection refused", 5, float(timeout))
        return HealthResult(False, 503, '{"status": "degraded"}', None, 5, float(timeout))


def make_config(tmp_path: Path, compose_text: str = COMPOSE_TEXT, **target: object) -> Config:
    """One target `engine` whose compose file is a real file in `tmp_path`."""
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text(compose_text, encoding="utf-8")
    settings: dict[str, object] = {
        "name": "engine",
        "environment": "test",
        "compose_file": compose_file,
        "service": "engine",
        "health_url": "http://127.0.0.1:8080/health",
        "drain_timeout": 7,
        "health_timeout": 20,
        **target,
    }
    return Config(
        targets={"engine": TargetConfig(**settings)},  # type: ignore[arg-type]
        evidence_dir=tmp_path / "evidence",
        source=tmp_path / "rollbot.yaml",
    )


@dataclass
class World:
    """A host running the Engine on 2.4.0, with 2.3.1 in the registry, and its configuration."""

    config: Config
    docker: FakeDocker
    compose: FakeCompose

    @property
    def compose_file(self) -> Path:
        return self.config.targets["engine"].compose_file

    def systems(self) -> Systems:
        return Systems(docker=self.docker, compose_for=self.compose_for)

    def compose_for(self, target: TargetConfig) -> FakeCompose:
        assert target.compose_file == self.compose.compose_file, "one compose per compose file"
        return self.compose


def make_world(tmp_path: Path, compose_text: str = COMPOSE_TEXT, **target: object) -> World:
    config = make_config(tmp_path, compose_text, **target)
    docker = FakeDocker(registry={f"{REPO}:2.4.0", f"{REPO}:2.3.1", f"{REPO}:2.2.0"})
    docker.run_container("c0ffee", f"{REPO}:2.4.0")
    docker.logs["c0ffee"] = b"2026-11-26T03:00:01Z engine 2.4.0 starting\n2026-11-26T03:05:00Z ERROR 500\n"
    compose = FakeCompose(config.targets["engine"].compose_file, docker, service_container="c0ffee")
    return World(config, docker, compose)
