"""Keep the last N versions: the runbook's rule that a rollback always has somewhere to go.

rollbot never removes an image (it has no prune of its own), so the images it may roll back to
are only at risk from registry retention and host clean-ups. What it can do is look: count the
versions older than the one running, in the registry and on this host, and warn on the plan and
in `/rollback status` when there are fewer than the target's `keep_images`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.ports import DockerFacts
from bot.tags import ImageRef


@dataclass(frozen=True)
class KeptVersions:
    keep: int
    earlier: tuple[str, ...]  # newest first
    looked_at: str  # where the tags were found, e.g. "registry and this host"

    @property
    def warning(self) -> str | None:
        if len(self.earlier) >= self.keep:
            return None
        return (
            f"only {len(self.earlier)} earlier version(s) to roll back to ({', '.join(self.earlier) or 'none'}); "
            f"the runbook says keep the last {self.keep}"
        )

    def describe(self) -> str:
        shown = ", ".join(self.earlier[: self.keep])
        return self.warning or f"{len(self.earlier)} earlier versions kept ({shown}…) in the {self.looked_at}"


def kept_versions(docker: DockerFacts, running_image: str, keep: int) -> KeptVersions | None:
    """The versions older than the running one that exist somewhere; None when the running tag
    has no version number to compare with (e.g. `latest`)."""
    reference = ImageRef.parse(running_image)
    running = version_key(reference.tag)
    if running is None:
        return None
    tags, looked_at = docker.image_tags(reference.repository)
    earlier = sorted(
        (tag for tag in tags if (key := version_key(tag)) is not None and key < running),
        key=lambda tag: version_key(tag) or (),
        reverse=True,
    )
    return KeptVersions(keep, tuple(earlier), looked_at)


def version_key(tag: str | None) -> tuple[int, ...] | None:
    """`2.10.1` sorts after `2.9.3`; a tag without a number does not sort at all."""
    numbers = re.findall(r"\d+", tag or "")
    return tuple(int(n) for n in numbers) if numbers else None
