"""Preflight for the brain: is a restore needed, from which snapshot, and what it will remove.

The brain must be restored when its schema version is newer than the newest schema the target
version reads. That number comes from the target image's label `io.rollbot.brain-schema`
(read from the image on this host), else from the metadata of a snapshot taken while the
target version ran. When neither exists the plan says so, shows the facts, and asks the person
to choose (`--brain restore` or `--brain keep`); rollbot never guesses about data.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.brain import LossReport, TableLoss, loss_report, schema_version
from bot.brain_swap import hard_links_work
from bot.config import BrainConfig
from bot.docker_host import DockerFacts
from bot.preflight import Preflight
from bot.snapshots import RUNBOOK_NAME, Snapshot, list_snapshots, verify

SCHEMA_LABEL = "io.rollbot.brain-schema"
DISK_MARGIN_BYTES = 64 * 1024 * 1024
BRAIN_CHECKS = (
    "brain schema",
    "snapshot",
    "snapshot verifies",
    "free disk space",
    "brain folder allows the swap",
    "data the restore removes",
)


class BrainChoice(StrEnum):
    AUTO = "auto"
    RESTORE = "restore"
    KEEP = "keep"


@dataclass(frozen=True)
class BrainPlan:
    path: Path
    live_schema: int | None
    target_reads: int | None
    target_reads_source: str
    restore: bool
    snapshot: Snapshot | None = None
    loss: LossReport | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrainPlan:
        """Read back from a journaled plan (see `Plan.from_dict`)."""
        return cls(
            path=Path(data["path"]),
            live_schema=data.get("live_schema"),
            target_reads=data.get("target_reads"),
            target_reads_source=data.get("target_reads_source", ""),
            restore=bool(data.get("restore")),
            snapshot=Snapshot.from_dict(data["snapshot"]) if data.get("snapshot") else None,
            loss=LossReport(tuple(TableLoss(**table) for table in data["loss"]["tables"])) if data.get("loss") else None,
        )


def preflight_brain(
    brain: BrainConfig, version: str, target_image: str, choice: BrainChoice, docker: DockerFacts, preflight: Preflight
) -> BrainPlan:
    if not brain.path.is_file():
        preflight.warn(BRAIN_CHECKS[0], f"no brain at {brain.path}; there is nothing to restore")
        preflight.not_applicable(BRAIN_CHECKS)
        return BrainPlan(brain.path, None, None, "", restore=False)
    live = schema_version(brain.path, brain.schema_query)
    snapshots = list_snapshots(brain)
    reads, source = target_reads(version, target_image, docker, snapshots)
    plan = BrainPlan(brain.path, live, reads, source, restore=False)
    if not _decide(plan, version, choice, snapshots, preflight):
        preflight.not_applicable(BRAIN_CHECKS[1:])
        return plan
    snapshot = _check_snapshot(brain, snapshots, version, reads, live, preflight)
    _check_room(brain.path, snapshot, preflight)
    loss = loss_report(brain.path, snapshot.path)
    if loss.total_rows:
        tables = sum(1 for table in loss.tables if table.rows)
        preflight.warn(BRAIN_CHECKS[5], f"{loss.total_rows} row(s) in {tables} table(s) leave the live brain; "
                                        "they stay in the forensic copy")
    else:
        preflight.passed(BRAIN_CHECKS[5], loss.describe())
    return BrainPlan(brain.path, live, reads, source, restore=True, snapshot=snapshot, loss=loss)


def target_reads(
    version: str, image: str, docker: DockerFacts, snapshots: list[Snapshot]
) -> tuple[int | None, str]:
    """The newest brain schema `version` reads, and where that knowledge comes from."""
    label = (docker.image_labels(image) or {}).get(SCHEMA_LABEL, "")
    if label.strip().isdigit():
        return int(label), f"label {SCHEMA_LABEL} of {image}"
    seen = [s for s in snapshots if s.image_tag == version and s.schema_version is not None]
    if seen:
        newest = max(seen, key=lambda s: s.taken_at)
        return newest.schema_version, f"snapshot {newest.path.name}, taken while {version} ran"
    return None, "unknown"


def _decide(
    plan: BrainPlan, version: str, choice: BrainChoice, snapshots: list[Snapshot], preflight: Preflight
) -> bool:
    """Whether to restore; asks the person (stopping preflight) when the facts cannot tell."""
    name, live, reads = BRAIN_CHECKS[0], plan.live_schema, plan.target_reads
    if reads is None:
        facts = f"the brain is at schema {live}; {_newest(snapshots)}"
        if choice is BrainChoice.AUTO:
            preflight.ask(name, (
                f"cannot tell which brain schema {version} reads (no {SCHEMA_LABEL} label on its image here, "
                f"no snapshot taken while it ran); {facts}. Restore the brain from the snapshot, or keep it?"
            ))
        preflight.warn(name, f"the schema {version} reads is unknown; {facts}; {choice.value} as asked")
        return choice is BrainChoice.RESTORE
    if live > reads:
        if choice is BrainChoice.KEEP:
            preflight.fail(name, f"the brain is at schema {live} but {version} reads up to {reads} ({plan.target_reads_source}): "
                                 f"it cannot run on this brain, so it must be restored")
        preflight.passed(name, f"the brain is at schema {live}; {version} reads up to {reads} "
                               f"({plan.target_reads_source}): restore from a snapshot")
        return True
    if choice is BrainChoice.RESTORE:
        preflight.warn(name, f"the brain is at schema {live}, which {version} reads; restoring anyway, as asked")
        return True
    preflight.passed(name, f"the brain is at schema {live}; {version} reads up to {reads} "
                           f"({plan.target_reads_source}): no restore needed")
    return False


def _check_snapshot(
    brain: BrainConfig, snapshots: list[Snapshot], version: str, reads: int | None, live: int, preflight: Preflight
) -> Snapshot:
    if not snapshots:
        preflight.fail(BRAIN_CHECKS[1], f"no snapshot of the brain in {brain.snapshots_dir} (nor {RUNBOOK_NAME} "
                                        f"beside it): it cannot be restored; involve whoever owns the brain")
    limit = reads if reads is not None else live - 1
    usable = [s for s in snapshots if s.schema_version is None or s.schema_version <= limit]
    if not usable:
        newest = snapshots[0]
        preflight.fail(BRAIN_CHECKS[1], f"no snapshot {version} can read: the newest, {newest.path.name}, is at "
                                        f"schema {newest.schema_version} and {version} reads up to {limit}")
    snapshot = usable[0]
    age = _age(snapshot.taken_at)
    ran = f" while {snapshot.image_tag} ran" if snapshot.image_tag else (" by hand" if snapshot.by_hand else "")
    detail = f"{snapshot.path.name}: taken {age} ago{ran}, schema {snapshot.schema_version}, {_size(snapshot.size)}"
    if snapshot.age_seconds() > brain.max_snapshot_age_hours * 3600:
        preflight.warn(BRAIN_CHECKS[1], f"{detail} — older than {brain.max_snapshot_age_hours:g}h: more data is lost")
    else:
        preflight.passed(BRAIN_CHECKS[1], detail)
    problem = verify(snapshot)
    if problem or snapshot.schema_version is None:
        preflight.fail(BRAIN_CHECKS[2], f"{problem or 'its schema version cannot be read'}; the snapshot is unusable, "
                                        "nothing was touched")
    preflight.passed(BRAIN_CHECKS[2], "checksum and integrity check pass" if snapshot.checksum else "integrity check passes")
    return snapshot


def _check_room(brain: Path, snapshot: Snapshot, preflight: Preflight) -> None:
    free = shutil.disk_usage(brain.parent).free
    needed = snapshot.size + DISK_MARGIN_BYTES
    if free < needed:
        preflight.fail(BRAIN_CHECKS[3], f"{_size(free)} free beside the brain; the staged copy needs {_size(needed)}")
    preflight.passed(BRAIN_CHECKS[3], f"{_size(free)} free; the staged copy needs {_size(snapshot.size)}")
    problem = hard_links_work(brain.parent)
    if problem:
        preflight.fail(BRAIN_CHECKS[4], problem)
    preflight.passed(BRAIN_CHECKS[4], f"{brain.parent} allows atomic renames and hard links")


def _newest(snapshots: list[Snapshot]) -> str:
    if not snapshots:
        return "there is no snapshot"
    s = snapshots[0]
    return f"newest snapshot {s.path.name}: schema {s.schema_version}, taken {_age(s.taken_at)} ago"


def _age(when: datetime) -> str:
    seconds = max(0, int((datetime.now(UTC) - when).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"
