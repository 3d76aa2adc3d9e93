"""The preflight checks about the target as it runs now: its container, the version it runs, the
Compose config it was started from, and whether the wanted image can be had. Each looks; none touches."""

from __future__ import annotations

from typing import Any

from bot.config import TargetConfig
from bot.planning.preflight import Preflight
from bot.ports import Compose, ContainerFacts, DockerFacts, ImageSource, ServiceConfig
from bot.tags import ImageRef

CHECKS = (
    "target is configured",
    "version is a Docker tag",
    "compose file names the service",
    "no other run of this target",
    "running container",
    "container started from these files",
    "not the version running now",
    "image is available",
)


def service_container(
    target: TargetConfig, compose: Compose, docker: DockerFacts, facts: dict[str, Any]
) -> ContainerFacts | None:
    """The newest of the service's containers (a one-off is never one of them); all are kept
    in the plan, because the logs of every one of them are evidence."""
    ids = compose.container_ids(target.service)
    facts["container_ids"] = tuple(ids)
    return docker.container(ids[0]) if ids else None


def _check_config_hash(
    target: TargetConfig, service: ServiceConfig, container: ContainerFacts | None, preflight: Preflight
) -> None:
    """A warning, never a refusal: the rollback starts the service from the files as they are,
    and the person approving should know when that is not how the running one was started."""
    name = CHECKS[5]
    if container is None:
        preflight.passed(name, "no container to compare")
        return
    label = container.labels.get("com.docker.compose.config-hash")
    if not label:
        preflight.warn(
            name,
            f"{container.name} carries no Compose config-hash label: it was not started by "
            f"`docker compose up`, and the rollback will start '{target.service}' from the compose files",
        )
    elif label != service.config_hash:
        files = ", ".join(path.name for path in service.files)
        preflight.warn(
            name,
            f"{container.name} was not started from {files} as they are now (its config hash "
            f"differs from `docker compose config --hash {target.service}`): they changed since, "
            "or it was started another way; the rollback starts it from these files",
        )
    else:
        preflight.passed(name, f"{container.name} was started from these compose files")


def check_running_version(
    wanted: str,
    target: TargetConfig,
    configured: ImageRef,
    container: ContainerFacts | None,
    service: ServiceConfig,
    preflight: Preflight,
    facts: dict[str, Any],
) -> None:
    if container is None:
        preflight.warn(CHECKS[4], f"no container for '{target.service}'; there are no logs to capture")
        running = configured.tag
    else:
        facts.update(container_id=container.id, current_image=container.image)
        running = container.tag
        state = "running" if container.running else f"not running ({container.state})"
        preflight.passed(CHECKS[4], f"{container.name} {state} on {container.image}")
    facts["running_version"] = running
    _check_config_hash(target, service, container, preflight)
    if running == wanted:
        preflight.fail(
            CHECKS[6],
            f"{target.name} already runs {wanted}; nothing to roll back "
            "(if it is unhealthy, this is not a version problem)",
        )
    preflight.passed(CHECKS[6], f"{running or 'unknown'} → {wanted}")


def check_image(
    reference: str, target: TargetConfig, docker: DockerFacts, preflight: Preflight, facts: dict[str, Any]
) -> None:
    location = docker.locate_image(reference)
    facts["image_source"] = location.source
    if location.source is ImageSource.NOWHERE:
        preflight.fail(
            CHECKS[7],
            f"{location.detail}. Rebuild it from the git tag of {reference.rsplit(':', 1)[-1]} and push it, "
            f"then try again; the runbook says keep at least the last {target.keep_images} versions of each image",
        )
    preflight.passed(CHECKS[7], location.detail)
