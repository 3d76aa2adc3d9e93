"""Fakes of the outside systems, each honouring the contract of the Protocol it stands in for.

They share one small model of a Docker host: which image references the registry has, which
are on the host, and which containers exist. `FakeCompose` reads the real compose file on disk,
so what `up` starts is decided by the runner's edit, exactly as with `docker compose`.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from ruamel.yaml import YAML

from bot.adapters.log_capture import Section, write_capped
from bot.config import BrainConfig, Config, TargetConfig
from bot.errors import ComposeError, DockerError
from bot.planning.plan import Systems
from bot.ports import ContainerFacts, HealthResult, ImageLocation, ImageSource, MountFacts, RunningMounts, ServiceConfig
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
    mounts: dict[str, tuple[MountFacts, ...]] = field(default_factory=dict)  # by container id
    pids: dict[str, set[int]] = field(default_factory=dict)  # host pids of a container's processes

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

    def image_tags(self, repository: str) -> tuple[set[str], str]:
        self._ask(f"tags {repository}")
        return {
            ref.rsplit(":", 1)[1] for ref in self.registry | self.host if ref.rsplit(":", 1)[0] == repository
        }, "registry and on this host"

    def inspect(self, container_id: str) -> dict[str, object]:
        self._ask(f"inspect {container_id}")
        facts = self.containers[container_id]
        return {
            "Id": facts.id,
            "Name": f"/{facts.name}",
            "Config": {"Image": facts.image},
            "State": {"Running": facts.running, "Status": facts.state},
        }

    def image_labels(self, reference: str) -> dict[str, str] | None:
        self._ask(f"labels {reference}")
        return dict(self.labels.get(reference, {})) if reference in self.host else None

    def running_mounts(self) -> list[RunningMounts]:
        """Like `docker ps`: only running containers, each with its mounts."""
        self._ask("running mounts")
        return [RunningMounts(c.id, c.name, self.mounts.get(c.id, ())) for c in self.containers.values() if c.running]

    def container_pids(self, container_id: str) -> set[int]:
        """Like `docker top`: a stopped or missing container has no processes."""
        self._ask(f"top {container_id}")
        facts = self.containers.get(container_id)
        return set(self.pids.get(container_id, ())) if facts is not None and facts.running else set()

    def save_logs(self, container_ids: Sequence[str], destination: Path, cap: int) -> int:
        """Like the daemon: every container's whole log, headed when there are several, capped."""
        for container_id in container_ids:
            if container_id not in self.containers:
                raise DockerError(f"container {container_id[:12]} is gone; its logs cannot be captured")
        destination.parent.mkdir(parents=True, exist_ok=True)
        sections = [
            Section(
                f"===== {self.containers[i].name} ({i[:12]}) =====\n".encode() if len(container_ids) > 1 else None,
                [self.logs.get(i, b"")],
            )
            for i in container_ids
        ]
        with destination.open("wb") as handle:
            return write_capped(sections, handle, cap)

    def _ask(self, question: str) -> None:
        """Every question is noted; an unreachable daemon answers none of them."""
        self.questions.append(question)
        if self.unreachable:
            raise DockerError(f"cannot reach the Docker daemon: {self.unreachable}")

    def run_container(
        self, container_id: str, image: str, name: str = "demo-engine-1", labels: dict[str, str] | None = None
    ) -> None:
        self.host.add(image)
        self.containers[container_id] = ContainerFacts(
            id=container_id,
            name=name,
            image=image,
            running=True,
            state="running",
            started_at=datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
            labels=dict(labels or {}),
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
        self.scaled: list[str] = []  # more containers of the service (scale > 1), older than `current`
        self.files: list[Path] = [compose_file]  # merge order, like Compose's discovery or compose_files
        self.failures: dict[str, str] = {}
        self.interrupts: set[str] = set()
        self.drain_timeouts: list[int] = []
        self._next_id = 1

    def container_id(self, service: str) -> str | None:
        found = self.container_ids(service)
        return found[0] if found else None

    def container_ids(self, service: str) -> list[str]:
        self._hazards("ps")
        return ([self.current] if self.current else []) + self.scaled

    def service(self, service: str) -> ServiceConfig:
        """Compose's answer from the real files: the bodies merged in order, `${VAR}` from `.env`."""
        self._hazards("config")
        merged: dict[str, object] = {}
        for path in self.files:
            document = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
            merged.update((document.get("services") or {}).get(service) or {})
        if "image" not in merged:
            raise ComposeError(f"{self.compose_file}: Compose finds no service '{service}' with an image there")
        merged["image"] = self._interpolated(str(merged["image"]))
        digest = hashlib.sha256(json.dumps(merged, sort_keys=True, default=str).encode()).hexdigest()
        return ServiceConfig("demo", self.compose_file.parent, tuple(self.files), str(merged["image"]), digest)

    def _interpolated(self, text: str) -> str:
        env_file = self.compose_file.parent / ".env"
        values = (
            dict(
                line.split("=", 1)
                for line in env_file.read_text().splitlines()
                if "=" in line and not line.startswith("#")
            )
            if env_file.is_file()
            else {}
        )
        return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values.get(m[1], "").strip(), text)

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
        self.docker.run_container(self.current, image, labels=self.labels(service))
        return f"Container {service} Started"

    def configured_image(self, service: str) -> str:
        return self.service(service).image

    def labels(self, service: str) -> dict[str, str]:
        """The labels `up` puts on a container it makes from the files as they are now."""
        return {
            "com.docker.compose.project": "demo",
            "com.docker.compose.service": service,
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.config-hash": self.service(service).config_hash,
        }

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
    compose = FakeCompose(config.targets["engine"].compose_file, docker, service_container="c0ffee")
    try:
        labels = compose.labels("engine")  # started from the files as they are
    except ComposeError:
        labels = {}  # files a test made unreadable: the container predates them
    docker.run_container("c0ffee", f"{REPO}:2.4.0", labels=labels)
    docker.logs["c0ffee"] = b"2026-11-26T03:00:01Z engine 2.4.0 starting\n2026-11-26T03:05:00Z ERROR 500\n"
    return World(config, docker, compose)


# --- real SQLite brains -------------------------------------------------------------------------------

ENGINE_TABLES = ("episodes", "knowledge", "social_graph", "conversations", "feedback")
KEYED_TABLE = "facts"  # WITHOUT ROWID, keyed by a text primary key


def created_at(minute: int, day: int = 25) -> str:
    """A sortable ISO time for a row: day `day` of November 2026, `minute` minutes after 10:00."""
    hours, minutes = divmod(minute, 60)
    return f"2026-11-{day:02d}T{10 + hours:02d}:{minutes:02d}:00Z"


def quoted(name: str) -> str:
    """An SQL identifier, whatever characters the name holds."""
    return '"' + name.replace('"', '""') + '"'


def make_brain(path: Path, schema: int = 1, rows: int = 3, tables: tuple[str, ...] = ENGINE_TABLES) -> Path:
    """A real brain like the Engine's: WAL mode, `PRAGMA user_version = schema`, each table
    (id INTEGER PRIMARY KEY, created_at TEXT, content TEXT) holding `rows` rows, plus a
    WITHOUT ROWID table `facts` keyed by text with `rows` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as brain:
        brain.execute("PRAGMA journal_mode=WAL")
        for table in tables:
            brain.execute(f"CREATE TABLE {quoted(table)} (id INTEGER PRIMARY KEY, created_at TEXT, content TEXT)")
            brain.executemany(
                f"INSERT INTO {quoted(table)} (created_at, content) VALUES (?, ?)",
                [(created_at(i), f"{table} {i}") for i in range(rows)],
            )
        brain.execute(f"CREATE TABLE {KEYED_TABLE} (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID")
        brain.executemany(f"INSERT INTO {KEYED_TABLE} VALUES (?, ?)", [(f"k{i}", f"v{i}") for i in range(rows)])
        brain.execute(f"PRAGMA user_version = {int(schema)}")
        brain.commit()
    return path


def add_rows(path: Path, table: str, times: list[str]) -> list[int]:
    """Insert one row per time into `table` (as the Engine would); returns the new rowids."""
    with closing(sqlite3.connect(path)) as brain:
        ids = []
        for when in times:
            cursor = brain.execute(
                f"INSERT INTO {quoted(table)} (created_at, content) VALUES (?, ?)",
                (when, f"{table} at {when}"),
            )
            ids.append(int(cursor.lastrowid or 0))
        brain.commit()
    return ids


def run_sql(path: Path, *statements: str) -> None:
    """Run statements against a brain and commit (schema changes, deletes, new tables)."""
    with closing(sqlite3.connect(path)) as brain:
        for statement in statements:
            brain.execute(statement)
        brain.commit()


def upgrade_brain(path: Path, schema: int = 2, new_rows: int = 2) -> None:
    """What a forward-only migration and the bad window do: schema +1, a new table, new rows."""
    run_sql(
        path,
        f"PRAGMA user_version = {int(schema)}",
        "CREATE TABLE skills (id INTEGER PRIMARY KEY, created_at TEXT, content TEXT)",
        f"INSERT INTO skills (created_at, content) VALUES ('{created_at(0, day=26)}', 'new skill')",
    )
    for table in ENGINE_TABLES:
        add_rows(path, table, [created_at(minute, day=26) for minute in range(1, new_rows + 1)])


def leave_wal(path: Path, *statements: str) -> None:
    """Commit `statements` and die without closing, as a killed Engine would: the committed data
    stays in `path`-wal and is not checkpointed into the file."""
    script = (
        "import os, sqlite3, sys\n"
        "brain = sqlite3.connect(sys.argv[1])\n"
        "brain.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "for statement in sys.argv[2:]:\n"
        "    brain.execute(statement)\n"
        "brain.commit()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path), *statements], check=True, timeout=60)
    wal = Path(f"{path}-wal")
    assert wal.is_file() and wal.stat().st_size > 0, "the WAL should hold the committed rows"


def brain_contents(path: Path) -> dict[str, object]:
    """Every row of every table (in key order) and the schema version: the test's own reading,
    including whatever sits in the brain's WAL."""
    assert path.is_file(), f"{path} is missing"
    with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as brain:
        names = [
            row[0]
            for row in brain.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        contents: dict[str, object] = {
            name: brain.execute(f"SELECT * FROM {quoted(name)} ORDER BY 1").fetchall() for name in names
        }
        contents["#user_version"] = brain.execute("PRAGMA user_version").fetchone()[0]
    return contents


def brain_config(tmp_path: Path) -> BrainConfig:
    """The Engine's brain at data/brain.sqlite with snapshots in data/snapshots."""
    return BrainConfig(path=tmp_path / "data" / "brain.sqlite", snapshots_dir=tmp_path / "data" / "snapshots")
