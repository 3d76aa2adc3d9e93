"""Facts about containers and images, from the Docker Engine API through the Docker SDK.

Three questions: what runs in this container (image, since when), where the image of a version
can be found (the registry the reference names, this host, or nowhere), and the logs of the
service's containers since they were made, saved to a file before anything replaces them.

The SDK reports the daemon's refusals as `DockerException`s, but a daemon that does not answer
in time surfaces as the HTTP stack's own errors (requests' `ReadTimeout`/`ConnectionError`,
urllib3's `ReadTimeoutError` while a log stream is read). All of them (`DOCKER_FAILURES`) become
a `DockerError` with one line, never an "unexpected error".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import requests
import urllib3
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from bot.adapters.log_capture import Section, write_capped
from bot.errors import DockerError
from bot.ports import ContainerFacts, ImageLocation, ImageSource, MountFacts, RunningMounts

# The SDK reads multiplexed log streams from the raw socket: a stall there is the built-in
# TimeoutError (socket.timeout), a dropped daemon the built-in ConnectionError.
DOCKER_FAILURES = (
    DockerException,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    TimeoutError,
    ConnectionError,
)
TIMEOUTS = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


class DockerHost:
    """The real daemon, reached the way the docker CLI would (`DOCKER_HOST` or the socket)."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=60)
            except DOCKER_FAILURES as error:
                raise DockerError(f"cannot reach the Docker daemon: {_reason(error)}") from None
        return self._client

    def service_container_ids(self, project: str, service: str) -> list[str]:
        """The containers Compose made for `service` of `project`, running or not, newest first.

        Found by Compose's own labels. `oneoff=False` leaves out `docker compose run` containers:
        a one-off of the service (a shell, a migration) is not the service."""
        labels = [
            f"com.docker.compose.project={project}",
            f"com.docker.compose.service={service}",
            "com.docker.compose.oneoff=False",
        ]
        try:
            found = self.client.api.containers(all=True, filters={"label": labels})
        except DOCKER_FAILURES as error:
            raise DockerError(f"cannot list the containers of {project}/{service}: {_reason(error)}") from None
        found.sort(key=lambda c: c.get("Created", 0), reverse=True)
        return [container["Id"] for container in found]

    def container(self, container_id: str) -> ContainerFacts | None:
        try:
            attrs: dict[str, Any] = self.client.containers.get(container_id).attrs
        except NotFound:
            return None
        except DOCKER_FAILURES as error:
            raise DockerError(f"cannot inspect container {container_id[:12]}: {_reason(error)}") from None
        state = attrs.get("State", {})
        return ContainerFacts(
            id=attrs["Id"],
            name=attrs.get("Name", "").lstrip("/"),
            image=attrs.get("Config", {}).get("Image", ""),
            running=bool(state.get("Running")),
            state=str(state.get("Status", "unknown")),
            started_at=_parse_docker_time(state.get("StartedAt")),
            created_at=_parse_docker_time(attrs.get("Created")),
            labels=dict(attrs.get("Config", {}).get("Labels") or {}),
        )

    def running_mounts(self) -> list[RunningMounts]:
        """Every running container with its mounts, a named volume by its mountpoint on the host."""
        try:
            found = self.client.api.containers(filters={"status": "running"})
            return [
                RunningMounts(c["Id"], _first_name(c), tuple(self._mount(m) for m in c.get("Mounts") or ()))
                for c in found
            ]
        except DockerException as error:
            raise DockerError(f"cannot list the running containers and their mounts: {_reason(error)}") from None

    def _mount(self, mount: dict[str, Any]) -> MountFacts:
        source = str(mount.get("Source") or "")
        if not source and mount.get("Type") == "volume" and mount.get("Name"):
            source = str(self.client.api.inspect_volume(mount["Name"]).get("Mountpoint") or "")
        return MountFacts(source, str(mount.get("Destination") or ""), str(mount.get("Type") or "bind"))

    def container_pids(self, container_id: str) -> set[int]:
        """The host pids of a running container's processes (`docker top`); none when it is not running."""
        try:
            top = self.client.api.top(container_id, ps_args="-eo pid")
        except NotFound:
            return set()
        except APIError as error:
            if error.status_code == 409:  # not running: it has no processes
                return set()
            raise DockerError(f"cannot list the processes of {container_id[:12]}: {_reason(error)}") from None
        except DockerException as error:
            raise DockerError(f"cannot list the processes of {container_id[:12]}: {_reason(error)}") from None
        column = (top.get("Titles") or ["PID"]).index("PID") if "PID" in (top.get("Titles") or []) else 0
        return {int(row[column]) for row in top.get("Processes") or [] if str(row[column]).isdigit()}

    def locate_image(self, reference: str) -> ImageLocation:
        """Ask the registry first (what `compose pull` will use), then this host."""
        registry_answer = self._registry_answer(reference)
        if registry_answer is None:
            return ImageLocation(ImageSource.REGISTRY, f"{reference} is in its registry")
        if self._on_host(reference):
            return ImageLocation(
                ImageSource.HOST, f"{reference} is on this host (registry: {registry_answer}); nothing to pull"
            )
        return ImageLocation(
            ImageSource.NOWHERE, f"{reference} is not in its registry ({registry_answer}) nor on this host"
        )

    def inspect(self, container_id: str) -> dict[str, Any]:
        """`docker inspect` of a container: evidence of how the bad version was running."""
        try:
            return dict(self.client.api.inspect_container(container_id))
        except DOCKER_FAILURES as error:
            raise DockerError(f"cannot inspect container {container_id[:12]}: {_reason(error)}") from None

    def image_labels(self, reference: str) -> dict[str, str] | None:
        """The labels of the image on this host; None when it is not here (nothing is pulled)."""
        try:
            return dict(self.client.images.get(reference).labels or {})
        except ImageNotFound:
            return None
        except DOCKER_FAILURES as error:
            raise DockerError(f"cannot inspect image {reference}: {_reason(error)}") from None

    def save_logs(self, container_ids: Sequence[str], destination: Path, cap: int) -> int:
        """Write the stdout and stderr of these containers since each was made, across its
        restarts (a crash loop restarts the same container), under `cap` bytes with both ends kept;
        return the bytes written. With several containers each one's lines follow a header."""
        containers = [self._existing(container_id) for container_id in container_ids]
        destination.parent.mkdir(parents=True, exist_ok=True)
        with destination.open("wb") as handle:
            sections = (self._log_section(c, headed=len(containers) > 1) for c in containers)
            return write_capped(sections, handle, cap)

    def _existing(self, container_id: str) -> Any:
        try:
            return self.client.containers.get(container_id)
        except NotFound:
            raise DockerError(f"container {container_id[:12]} is gone; its logs cannot be captured") from None
        except DOCKER_FAILURES as error:
            raise DockerError(f"cannot inspect container {container_id[:12]}: {_reason(error)}") from None

    def _log_section(self, container: Any, headed: bool) -> Section:
        header = None
        if headed:
            attrs = container.attrs
            header = (
                f"===== {container.name} ({container.id[:12]}), made {attrs.get('Created', '?')}, "
                f"restarted {attrs.get('RestartCount', 0)} time(s) =====\n"
            ).encode()
        return Section(header, self._log_chunks(container))

    @staticmethod
    def _log_chunks(container: Any) -> Iterator[bytes]:
        """No `since`: Docker keeps a container's log across its restarts, and the container was
        made by the upgrade, so all of it is the bad version's."""
        try:
            yield from container.logs(stdout=True, stderr=True, timestamps=True, stream=True, follow=False)
        except DOCKER_FAILURES as error:
            raise DockerError(f"reading the logs of {container.name} failed: {_reason(error)}") from None

    def image_tags(self, repository: str) -> tuple[set[str], str]:
        """The tags of `repository` on this host and, when it answers without credentials, in its
        registry (Docker's API has no tag listing; the registry's own v2 API does)."""
        try:
            host = {
                tag.rsplit(":", 1)[1]
                for image in self.client.images.list(name=repository)
                for tag in image.tags
                if tag.rsplit(":", 1)[0] == repository
            }
        except DOCKER_FAILURES as error:
            raise DockerError(f"cannot list images on this host: {_reason(error)}") from None
        registry = _registry_tags(repository)
        if registry is None:
            return host, "this host (its registry did not list its tags)"
        return host | registry, "registry and on this host"

    def _registry_answer(self, reference: str) -> str | None:
        """None when the registry has the image; otherwise what it (or the attempt) said."""
        try:
            self.client.images.get_registry_data(reference)
            return None
        except NotFound:
            return "not found there"
        except APIError as error:
            return _reason(error)
        except DOCKER_FAILURES as error:
            raise DockerError(f"cannot reach the Docker daemon: {_reason(error)}") from None

    def _on_host(self, reference: str) -> bool:
        try:
            self.client.images.get(reference)
            return True
        except ImageNotFound:
            return False
        except DOCKER_FAILURES as error:
            raise DockerError(f"cannot list images on this host: {_reason(error)}") from None


def _registry_tags(repository: str) -> set[str] | None:
    """`GET /v2/<name>/tags/list` of the repository's registry; None when it does not answer so."""
    host, _, name = repository.partition("/")
    if "." not in host and ":" not in host and host != "localhost":
        return None  # Docker Hub needs a token dance; the host's images are what we count there
    scheme = "http" if host.startswith(("127.0.0.1", "localhost")) else "https"
    try:
        answer = httpx.get(f"{scheme}://{host}/v2/{name}/tags/list", timeout=3)
        return set(answer.json().get("tags") or []) if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _first_name(container: dict[str, Any]) -> str:
    names = container.get("Names") or []
    return str(names[0]).lstrip("/") if names else str(container.get("Id", ""))[:12]


def _parse_docker_time(value: str | None) -> datetime | None:
    """Docker writes RFC 3339 with nanoseconds; Python reads at most microseconds."""
    text = value or ""
    match = DOCKER_TIME.fullmatch(text)
    if match is None or text.startswith("0001-"):
        return None
    seconds, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{seconds}.{(fraction or '0')[:6]}{zone}")


def _reason(error: Exception) -> str:
    if isinstance(error, TIMEOUTS) or isinstance(getattr(error, "__context__", None), TIMEOUTS):
        return "the Docker daemon did not answer in time (it may be overloaded or hung)"
    explanation = getattr(error, "explanation", None)
    text = str(explanation or error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
