"""The small interfaces the core drives the outside world through, and the values they carry.

Planning and running need to know what Compose, the Docker daemon, `/health` and a ticket
system answer, not how: the real adapters (`bot.adapters`, `bot.reporting.tickets`) and the
tests' fakes both honour these Protocols, and only the composition root (`bot.wiring`) picks
one. This module imports nothing outside the standard library and outside-library-free bot
modules, so importing the planner or the runner loads no Docker SDK, HTTP client or Jira.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from bot.brain.facts import TableLoss
from bot.tags import ImageRef


@dataclass(frozen=True)
class ServiceConfig:
    """What Compose itself says about the service, as `docker compose` in its folder sees it."""

    project: str  # the project name Compose uses (its containers carry it as a label)
    directory: Path  # where Compose runs; its `.env` is read from here
    files: tuple[Path, ...]  # the compose files Compose merges, in merge order
    image: str  # the service's image after merging and `${VAR}` interpolation
    config_hash: str  # `docker compose config --hash SERVICE`: a container made from these files carries it

    @property
    def env_file(self) -> Path:
        return self.directory / ".env"


class Compose(Protocol):
    """What the core needs from Compose for one target's project."""

    def service(self, service: str) -> ServiceConfig: ...
    def container_ids(self, service: str) -> list[str]: ...
    def container_id(self, service: str) -> str | None: ...
    def pull(self, service: str) -> str: ...
    def stop(self, service: str, drain_timeout: int) -> str: ...
    def up(self, service: str) -> str: ...


class ImageSource(StrEnum):
    REGISTRY = "registry"
    HOST = "host"
    NOWHERE = "nowhere"


@dataclass(frozen=True)
class ImageLocation:
    """Where an image was found, and what the registry said when it was asked."""

    source: ImageSource
    detail: str


@dataclass(frozen=True)
class ContainerFacts:
    id: str
    name: str
    image: str
    running: bool
    state: str
    started_at: datetime | None
    created_at: datetime | None = None  # when Compose made it: for a deploy's container, when the version went live
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return ImageRef.parse(self.image).tag


@dataclass(frozen=True)
class MountFacts:
    """One mount of a container: `source` is the host path (a named volume's mountpoint)."""

    source: str
    destination: str
    kind: str = "bind"


@dataclass(frozen=True)
class RunningMounts:
    """A running container and what it mounts: what can reach the brain's folder."""

    id: str
    name: str
    mounts: tuple[MountFacts, ...]


class DockerFacts(Protocol):
    """What the core asks the Docker daemon."""

    def container(self, container_id: str) -> ContainerFacts | None: ...
    def locate_image(self, reference: str) -> ImageLocation: ...
    def image_labels(self, reference: str) -> dict[str, str] | None: ...
    def inspect(self, container_id: str) -> dict[str, Any]: ...
    def save_logs(self, container_ids: Sequence[str], destination: Path, cap: int) -> int: ...
    def image_tags(self, repository: str) -> tuple[set[str], str]: ...
    def running_mounts(self) -> list[RunningMounts]: ...
    def container_pids(self, container_id: str) -> set[int]: ...


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    status_code: int | None
    body: str
    error: str | None
    attempts: int
    seconds: float

    def describe(self) -> str:
        if self.ok:
            return f"healthy (HTTP {self.status_code}) after {self.attempts} check(s), {self.seconds:.1f}s"
        answer = f"HTTP {self.status_code}: {self.body}" if self.status_code else (self.error or "no answer")
        return f"not healthy after {self.attempts} check(s) in {self.seconds:.1f}s; last answer: {answer}"


class Health(Protocol):
    """Whether the Engine came back within its time: the runner's last word on a rollback."""

    def wait_until_healthy(self, url: str, timeout: float) -> HealthResult: ...


Series = list[tuple[datetime, float]]  # (when, value), oldest first


class Metrics(Protocol):
    """The Engine's own metrics (Prometheus' HTTP API): what the judgement of a rollback reads.

    Both raise `MetricsError` when the server cannot be reached, refuses the query or does not
    answer within `timeout` seconds (None: the client's own); an answer with no data is `None`
    or an empty series, not an error."""

    def instant(
        self, base_url: str, query: str, at: datetime | None = None, timeout: float | None = None
    ) -> float | None: ...
    def series(
        self, base_url: str, query: str, start: datetime, end: datetime, step: float, timeout: float | None = None
    ) -> Series: ...


@dataclass(frozen=True)
class EvalResult:
    """What the regression eval said: passed or not, and the line a person reads."""

    passed: bool
    detail: str


class RegressionEval(Protocol):
    """Runs the target's regression eval (a command's argument list, or a URL)."""

    def run(self, how: tuple[str, ...] | str, timeout: float) -> EvalResult: ...


LABEL_PREFIX = "rollbot-run-"


@dataclass(frozen=True)
class Postmortem:
    run_id: str
    title: str
    summary: list[str]
    impact: list[str]
    loss: list[TableLoss]
    timeline: list[tuple[datetime, str]]
    detection: list[str]
    resolution: list[str]
    action_items: list[str]
    supporting: list[str]
    attachments: list[Path] = field(default_factory=list)
    slack_link: str | None = None  # the announcement's permalink (chat.getPermalink), when Slack gave one

    @property
    def label(self) -> str:
        """Every ticket carries its run id as a label: how a lost create is found, not repeated."""
        return f"{LABEL_PREFIX}{self.run_id}"


@dataclass(frozen=True)
class Ticket:
    key: str
    url: str | None


class TicketSink(Protocol):
    """Where postmortems go. `create` answers with the key, stored at once; `complete` adds what
    the ticket still lacks (its attachments, each once); `find` is asked only when a create's
    answer was lost, so a lagging search never decides alone whether to create."""

    def find(self, postmortem: Postmortem) -> Ticket | None: ...
    def create(self, postmortem: Postmortem) -> Ticket: ...
    def complete(self, ticket: Ticket, postmortem: Postmortem) -> None: ...
