"""The real things the integration tests drive: Docker, Compose v2, the registry, the demo Engine.

Nothing here is faked. Images of the demo Engine are built from `examples/demo/engine` and
pushed to the local registry; each test gets its own Compose project made from the example
compose file (its comments included), on a free port, and tears it down afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx

from storage import Journal, RunView, connect

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "demo"
REGISTRY = os.environ.get("ROLLBOT_TEST_REGISTRY", "127.0.0.1:5000")
BASE_IMAGE = os.environ.get("ROLLBOT_TEST_BASE_IMAGE", "rollbot-test-base:bookworm")


def source_digest(*files: Path) -> str:
    """An image's build inputs, hashed into its repository name: the tests share one Docker daemon and
    registry, and a tag pushed by a checkout with another engine.py must never be pulled by this one."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:10]


REPOSITORY = f"{REGISTRY}/rollbot-test/engine-{source_digest(EXAMPLE / 'engine' / 'engine.py', EXAMPLE / 'engine' / 'Dockerfile')}"
EXAMPLE_IMAGE = "127.0.0.1:5000/rollbot-demo/engine"

HEALTHY, BROKEN, FIXED = "2.3.1", "2.4.0", "2.4.1"
# version: (broken, newest brain schema it reads) — 2.4.0 migrates the brain forward to 2 and
# fails /health; 2.4.1 is its fixed build: it reads schema 2 and is healthy.
DEMO_VERSIONS = {HEALTHY: (False, 1), BROKEN: (True, 2), FIXED: (False, 2)}
BRAIN_CONFIG = """    brain:
      path: data/brain.sqlite  # the same file the container sees as /data/brain.sqlite
      snapshots_dir: data/snapshots
      # whose rows a restore takes out: the columns that name a user or a conversation
      affected: {conversations: [user_id, conversation_id], feedback: [user_id]}
      # where the Engine records its calls to the outside world, and which ones no rollback undoes
      external_calls: {table: tool_calls, tool: tool, at: created_at, outcome: outcome, destructive: [send_email, delete_resource]}
"""


def require_docker() -> None:
    """Fail loudly (never skip) when the daemon, Compose v2 or the registry is missing."""
    problems = []
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        problems.append("no Docker daemon answers `docker info`")
    elif subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        problems.append("Compose v2 (`docker compose`) is not installed")
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except httpx.HTTPError as error:
        problems.append(f"no registry at {REGISTRY}: {error}")
    if problems:
        raise RuntimeError("; ".join(problems) + " — run `bash .ci/setup.sh` first")


def build_demo_images(versions: dict[str, tuple[bool, int]]) -> None:
    """Build and push one demo Engine image per version ({version: (broken, brain schema)})."""
    for version, (broken, schema) in versions.items():
        tag = f"{REPOSITORY}:{version}"
        subprocess.run(
            [
                "docker",
                "build",
                "--quiet",
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Deployment:
    """One Compose project of the demo Engine plus a rollbot config and database beside it."""

    folder: Path
    project: str
    port: int
    repository: str = REPOSITORY  # where its versions' images are: deploy() names tags of it

    @property
    def compose_file(self) -> Path:
        return self.folder / "docker-compose.yml"

    @property
    def config_file(self) -> Path:
        return self.folder / "rollbot.yaml"

    @property
    def database(self) -> Path:
        return self.folder / "rollbot.db"

    @property
    def brain(self) -> Path:
        return self.folder / "data" / "brain.sqlite"

    @property
    def snapshots(self) -> Path:
        return self.folder / "data" / "snapshots"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def compose(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", "-f", str(self.compose_file), *arguments],
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=check,
        )

    def container(self) -> docker.models.containers.Container:
        ids = self.compose("ps", "--all", "--quiet", "engine").stdout.split()
        assert len(ids) == 1, f"expected one engine container, found {ids}"
        return docker.from_env().containers.get(ids[0])

    def rollbot(
        self, *arguments: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*arguments),
            cwd=self.folder,
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def command(self, *arguments: str) -> list[str]:
        return [sys.executable, "-m", "bot", "--config", str(self.config_file), *arguments]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBOT_", "SLACK_", "JIRA_"))}
        # PYTHONPATH: the checkout's code, whatever copy of rollbot is installed on this machine
        return {**env, "DATABASE_URL": f"sqlite:///{self.database}", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}

    def journal(self) -> Journal:
        return Journal(connect(f"sqlite:///{self.database}"))

    def runs(self) -> list[RunView]:
        return self.journal().runs()

    def history_json(self) -> list[dict[str, object]]:
        done = self.rollbot("history", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def health(self) -> httpx.Response | None:
        try:
            return httpx.get(self.health_url, timeout=2)
        except httpx.HTTPError:
            return None

    def remember(self, turns: int) -> None:
        """Turns through the running Engine, each writing a row to every memory table."""
        for turn in range(turns):
            httpx.post(f"http://127.0.0.1:{self.port}/remember", content=f"turn {turn}", timeout=5).raise_for_status()

    def turn(self, user: str, conversation: str, text: str = "a turn", tool: str | None = None) -> None:
        """One turn saying who and what (the demo Engine's JSON body): its rows name the user
        and the conversation, and from schema 2 its tool call is recorded with the outcome."""
        body = {"user": user, "conversation": conversation, "text": text, **({"tool": tool} if tool else {})}
        httpx.post(f"http://127.0.0.1:{self.port}/remember", json=body, timeout=5).raise_for_status()

    def deploy(self, version: str) -> None:
        """What a deploy does: bump the tag in the compose file and `up -d`."""
        text = self.compose_file.read_text()
        current = next(line for line in text.splitlines() if line.strip().startswith("image:"))
        self.compose_file.write_text(text.replace(current, f"    image: {self.repository}:{version}"))
        self.compose("up", "--detach", "engine")
        self.wait_for_answer()

    def wait_for_answer(self, timeout: float = 30) -> httpx.Response:
        """Poll until the Engine answers /health at all (a container answers a moment after up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.health()
            if answer is not None:
                return answer
            time.sleep(0.3)
        raise AssertionError(f"{self.health_url} did not answer within {timeout}s")


@contextmanager
def deployment(
    tmp_path: Path,
    running: str,
    *,
    drain_seconds: float = 1,
    health_timeout: int = 30,
    drain_timeout: int = 30,
    brain: bool = False,
    config_edits: dict[str, str] | None = None,
    up: bool = True,
    repository: str = REPOSITORY,
) -> Iterator[Deployment]:
    """The example compose project, made unique (project, port, image repo), up on `running`.

    Without `brain` the brain mount and the brain config are left out: an image-only target.
    With `up=False` nothing is started: preflight finds no container (a warning, not a refusal)
    and only asks the daemon and the registry about images, which takes a moment.
    """
    folder = tmp_path / "deploy"
    folder.mkdir()
    project = f"rbt-{secrets.token_hex(4)}"
    port = free_port()
    text = (EXAMPLE / "docker-compose.yml").read_text()
    text = (
        text.replace("name: rollbot-demo", f"name: {project}")
        .replace(f"{EXAMPLE_IMAGE}:2.4.0", f"{repository}:{running}")
        .replace("127.0.0.1:8080:8080", f"127.0.0.1:{port}:8080")
        .replace('ENGINE_DRAIN_SECONDS: "2"', f'ENGINE_DRAIN_SECONDS: "{drain_seconds}"')
    )
    if not brain:
        text = "".join(
            line
            for line in text.splitlines(keepends=True)
            if line.strip() not in ("volumes:",) and "./data:/data" not in line
        )
    else:
        (folder / "data").mkdir()
    (folder / "docker-compose.yml").write_text(text)
    config = (EXAMPLE / "rollbot.yaml").read_text()
    if not brain:
        config = config.replace(BRAIN_CONFIG, "")
        assert "brain:" not in config
    config = (
        config.replace("http://127.0.0.1:8080/health", f"http://127.0.0.1:{port}/health")
        .replace("health_timeout: 60", f"health_timeout: {health_timeout}")
        .replace("drain_timeout: 30", f"drain_timeout: {drain_timeout}")
    )
    for old, new in (config_edits or {}).items():
        assert old in config, f"{old!r} is not in the example rollbot.yaml"
        config = config.replace(old, new)
    (folder / "rollbot.yaml").write_text(config)
    deployed = Deployment(folder, project, port, repository)
    try:
        if up:
            deployed.compose("up", "--detach", "engine")
            deployed.wait_for_answer()
        yield deployed
    finally:
        deployed.compose("down", "--timeout", "1", "--volumes", "--remove-orphans", check=False)
        shutil.rmtree(folder / "evidence", ignore_errors=True)


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    """Pairs of (old, new) lines that differ; the files must have the same number of lines."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old) == len(new), "the edit added or removed lines"
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s")


def non_empty_lines(text: str) -> Sequence[str]:
    return [line for line in text.splitlines() if line.strip()]
