"""Which version "roll back" means when nobody names one: the previous good version.

On call, the version to go back to is the one that ran healthy before the bad one. rollbot knows
two things that say so, and one that only says what is possible:

1. versions it saw healthy on this target itself: a version answering /health ok while the
   brain was at some schema (`brain_schemas`, see storage/schemas.py), and the target version
   of every rollback that succeeded (its health check passed);
2. the images kept (registry or this host) of versions older than the one running.

The rule: of the versions seen healthy, other than the one running now and not newer than it
(when both are version numbers), whose image is still kept (when rollbot could list them), the
one seen healthy most recently. Most recently, not highest: after an earlier rollback to 2.2.0,
2.2.0 is what last ran well, even if 2.3.1 is a higher number. When rollbot never saw one, the
newest kept earlier version, saying that it was never seen healthy. Otherwise there is no
answer, and the person is asked to name a version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.planning.kept_images import KeptVersions, version_key


@dataclass(frozen=True)
class HealthySighting:
    """`version` was seen healthy on the target, last at `last_seen`, by `how`."""

    version: str
    last_seen: datetime
    how: str


@dataclass(frozen=True)
class VersionChoice:
    """The version chosen and why, in one line a person reads on the plan."""

    version: str
    why: str
    seen_healthy: bool = True  # False: only an image kept; rollbot never saw it run well


def previous_good(
    running: str | None, seen: Sequence[HealthySighting], kept: KeptVersions | None
) -> VersionChoice | None:
    """The previous good version by the rule above; None when rollbot knows of none."""
    available = set(kept.earlier) if kept is not None else None
    candidates = sorted(
        (
            sighting
            for sighting in seen
            if sighting.version != running
            and not _newer(sighting.version, running)
            and (available is None or sighting.version in available)
        ),
        key=lambda sighting: sighting.last_seen,
        reverse=True,
    )
    if candidates:
        best = candidates[0]
        return VersionChoice(
            best.version,
            f"{best.version} is the previous good version: the last version rollbot saw healthy "
            f"({best.how}, {best.last_seen:%Y-%m-%d %H:%M} UTC) other than {running or 'the one running'}",
        )
    if kept is not None and kept.earlier:
        newest = kept.earlier[0]
        return VersionChoice(
            newest,
            f"{newest} is the newest earlier version kept in the {kept.looked_at}; rollbot has not seen it "
            "healthy itself, so check the plan",
            seen_healthy=False,
        )
    return None


def known_versions(running: str | None, seen: Sequence[HealthySighting], kept: KeptVersions | None) -> list[str]:
    """Every version rollbot knows for the target except the one running, newest first: what a
    person picks from (versions without a number last, by name)."""
    names = {sighting.version for sighting in seen} | set(kept.earlier if kept is not None else ())
    names.discard(running or "")
    numbered = sorted(
        (n for n in names if version_key(n) is not None), key=lambda n: version_key(n) or (), reverse=True
    )
    return numbered + sorted(n for n in names if version_key(n) is None)


def _newer(version: str, running: str | None) -> bool:
    mine, theirs = version_key(version), version_key(running)
    return mine is not None and theirs is not None and mine > theirs
