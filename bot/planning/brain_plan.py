"""Preflight for the brain: is a restore needed, from which snapshot, and what it will remove.

The runbook: if the new version's migrations changed the brain schema, restore the pre-upgrade
snapshot. The brain must be restored when its schema is newer than the newest schema the target
version reads. That number comes, in this order, from facts a real deployment has:

1. the target image's label `io.rollbot.brain-schema`, when its builders put one there;
2. what rollbot has seen: the target version healthy on a brain schema (journaled at every
   snapshot, status and run), or a snapshot whose sidecar says it was taken while it ran;
3. the pre-upgrade snapshot: the newest snapshot taken before the running version went live
   (its container was created). At the live brain's schema, the upgrade did not migrate: keep
   the brain. At a lower schema, the upgrade migrated: restore from it.

Only when none of these exists does the plan ask the person (restore from the named snapshot,
or keep the brain), with the facts; rollbot never guesses about data. The plan says which fact
decided, and why.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.brain.facts import BrainError, LossReport, loss_report, schema_version
from bot.brain.holders import describe_holders, holders_before_stop
from bot.brain.snapshots import RUNBOOK_NAME, Snapshot, list_snapshots, verify
from bot.brain.swap import hard_links_work, ownership_problem
from bot.config import BrainConfig
from bot.planning.preflight import CheckResult, Preflight
from bot.ports import DockerFacts
from storage.schemas import SchemaSighting

SCHEMA_LABEL = "io.rollbot.brain-schema"
DISK_MARGIN_BYTES = 64 * 1024 * 1024
BRAIN_CHECKS = (
    "brain schema",
    "snapshot",
    "snapshot verifies",
    "free disk space",
    "brain folder allows the swap",
    "data the restore removes",
    "nothing else holds the brain",
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
    # Set while the plan asks: `snapshot` and `loss` then describe what a restore would do.
    asking: bool = False

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
            loss=LossReport.from_dict(data["loss"]) if data.get("loss") else None,
            asking=bool(data.get("asking")),
        )


SchemaSeen = Callable[[str], SchemaSighting | None]


@dataclass(frozen=True)
class RunningFacts:
    """What preflight knows of the version running now, beyond the brain's files."""

    version: str | None = None
    went_live: datetime | None = None  # when its container was created: the upgrade's moment
    seen: SchemaSeen = field(default=lambda version: None)  # what rollbot saw of a version, by version
    container_ids: tuple[str, ...] = ()  # the service's containers: the ones the run stops, never one-offs


@dataclass(frozen=True)
class SchemaEvidence:
    """The newest schema the target reads, and the fact that says so (shown in the plan)."""

    reads: int | None
    source: str


def preflight_brain(
    brain: BrainConfig,
    version: str,
    target_image: str,
    choice: BrainChoice,
    docker: DockerFacts,
    preflight: Preflight,
    running: RunningFacts = RunningFacts(),
) -> BrainPlan:
    if not brain.path.is_file():
        preflight.warn(BRAIN_CHECKS[0], f"no brain at {brain.path}; there is nothing to restore")
        preflight.not_applicable(BRAIN_CHECKS)
        return BrainPlan(brain.path, None, None, "", restore=False)
    live = schema_version(brain.path, brain.schema_query)
    snapshots = list_snapshots(brain)
    evidence = target_reads(version, target_image, docker, snapshots, live, running)
    plan = BrainPlan(brain.path, live, evidence.reads, evidence.source, restore=False)
    if evidence.reads is None and choice is BrainChoice.AUTO:
        return _ask(plan, version, snapshots, running, preflight, brain.affected)
    if not _decide(plan, live, version, choice, snapshots, preflight):
        preflight.not_applicable(BRAIN_CHECKS[1:])
        return plan
    snapshot = _check_snapshot(brain, snapshots, version, evidence.reads, live, preflight)
    _check_room(brain.path, snapshot, preflight)
    loss = loss_report(brain.path, snapshot.path, brain.affected)
    if loss.total_undone:
        tables = sum(1 for table in loss.tables if table.undone)
        preflight.warn(
            BRAIN_CHECKS[5],
            f"{loss.total_rows} row(s) leave the live brain, {loss.total_changed} changed "
            f"row(s) go back to the snapshot's values and {loss.total_deleted} deleted "
            f"row(s) come back, in {tables} table(s); the live brain stays whole in the "
            "forensic copy",
        )
    else:
        preflight.passed(BRAIN_CHECKS[5], loss.describe())
    _check_holders(brain.path, docker, running.container_ids, preflight)
    return BrainPlan(brain.path, live, evidence.reads, evidence.source, restore=True, snapshot=snapshot, loss=loss)


def target_reads(
    version: str,
    image: str,
    docker: DockerFacts,
    snapshots: list[Snapshot],
    live: int | None = None,
    running: RunningFacts = RunningFacts(),
) -> SchemaEvidence:
    """The newest brain schema `version` reads, from the strongest fact there is (see the module)."""
    label = (docker.image_labels(image) or {}).get(SCHEMA_LABEL, "")
    if label.strip().isdigit():
        return SchemaEvidence(int(label), f"label {SCHEMA_LABEL} of {image}")
    sighting = running.seen(version)
    if sighting is not None:
        return SchemaEvidence(
            sighting.schema,
            f"rollbot saw {version} healthy on schema {sighting.schema} "
            f"({sighting.source}, {sighting.last_seen:%Y-%m-%d %H:%M} UTC)",
        )
    seen = [s for s in snapshots if s.image_tag == version and s.schema_version is not None]
    if seen:
        newest = max(seen, key=lambda s: s.taken_at)
        return SchemaEvidence(newest.schema_version, f"snapshot {newest.path.name}, taken while {version} ran")
    return _inferred_from_pre_upgrade(version, snapshots, live, running)


def _inferred_from_pre_upgrade(
    version: str, snapshots: list[Snapshot], live: int | None, running: RunningFacts
) -> SchemaEvidence:
    """The runbook's own test: did the upgrade migrate the brain? Compare the snapshot taken just
    before the running version went live with the brain now. It speaks for the version that ran
    before the upgrade, so a snapshot whose sidecar names another version says nothing here."""
    before = pre_upgrade_snapshot(snapshots, running)
    if before is None or live is None or before.schema_version is None or before.image_tag not in (None, version):
        return SchemaEvidence(None, "unknown")
    when = f"inferred from {before.path.name}, taken before {running.version or 'the running version'} started"
    if before.schema_version == live:
        return SchemaEvidence(live, f"{when}, at the live brain's schema {live}: the upgrade did not migrate the brain")
    if before.schema_version < live:
        return SchemaEvidence(
            before.schema_version,
            f"{when}, at schema {before.schema_version}: the upgrade migrated the brain to {live}",
        )
    return SchemaEvidence(None, "unknown")


def pre_upgrade_snapshot(snapshots: list[Snapshot], running: RunningFacts) -> Snapshot | None:
    """The newest snapshot taken before the running version's container was created."""
    if running.went_live is None:
        return None
    earlier = [s for s in snapshots if s.taken_at < running.went_live]
    return max(earlier, key=lambda s: s.taken_at) if earlier else None


def _ask(
    plan: BrainPlan,
    version: str,
    snapshots: list[Snapshot],
    running: RunningFacts,
    preflight: Preflight,
    affected: dict[str, tuple[str, ...]],
) -> BrainPlan:
    """Nothing tells: stop and ask, naming the snapshot a restore would use and what it would remove,
    so the person can answer in place (a button, the prompt) without asking again."""
    live = plan.live_schema
    option = _restore_option(snapshots, live)
    loss = None
    if option is not None:
        try:
            loss = loss_report(plan.path, option.path, affected)
        except BrainError:
            loss = None  # counted again, with the snapshot verified, once restore is chosen
    restore = (
        f"restore from {option.path.name} (schema {option.schema_version}, taken {_age(option.taken_at)} ago"
        + (
            f"; {loss.total_rows} row(s) leave the live brain, {loss.total_changed} changed and "
            f"{loss.total_deleted} deleted go back"
            if loss is not None
            else ""
        )
        + ")"
        if option is not None
        else "no snapshot to restore from"
    )
    preflight.record(
        BRAIN_CHECKS[0],
        CheckResult.ASK,
        (
            f"cannot tell which brain schema {version} reads (no {SCHEMA_LABEL} label on its image here, rollbot never "
            f"saw it run, no snapshot taken before {running.version or 'the running version'} started); "
            f"the brain is at schema {live}; {_newest(snapshots)}. Restore the brain ({restore}), or keep it?"
        ),
    )
    return replace(plan, snapshot=option, loss=loss, asking=True)


def _restore_option(snapshots: list[Snapshot], live: int | None) -> Snapshot | None:
    """The snapshot `--brain restore` would pick when the schema the target reads is unknown."""
    if live is None:
        return None
    usable = [s for s in snapshots if s.schema_version is None or s.schema_version <= live - 1]
    return usable[0] if usable else None


def _decide(
    plan: BrainPlan, live: int, version: str, choice: BrainChoice, snapshots: list[Snapshot], preflight: Preflight
) -> bool:
    """Whether to restore, once the facts or the person's choice tell."""
    name, reads = BRAIN_CHECKS[0], plan.target_reads
    if reads is None:
        facts = f"the brain is at schema {live}; {_newest(snapshots)}"
        preflight.warn(name, f"the schema {version} reads is unknown; {facts}; {choice.value} as asked")
        return choice is BrainChoice.RESTORE
    if live > reads:
        if choice is BrainChoice.KEEP:
            preflight.fail(
                name,
                f"the brain is at schema {live} but {version} reads up to {reads} ({plan.target_reads_source}): "
                f"it cannot run on this brain, so it must be restored",
            )
        preflight.passed(
            name,
            f"the brain is at schema {live}; {version} reads up to {reads} "
            f"({plan.target_reads_source}): restore from a snapshot",
        )
        return True
    if choice is BrainChoice.RESTORE:
        preflight.warn(name, f"the brain is at schema {live}, which {version} reads; restoring anyway, as asked")
        return True
    preflight.passed(
        name,
        f"the brain is at schema {live}; {version} reads up to {reads} ({plan.target_reads_source}): no restore needed",
    )
    return False


def _check_snapshot(
    brain: BrainConfig, snapshots: list[Snapshot], version: str, reads: int | None, live: int, preflight: Preflight
) -> Snapshot:
    if not snapshots:
        preflight.fail(
            BRAIN_CHECKS[1],
            f"no snapshot of the brain in {brain.snapshots_dir} (nor {RUNBOOK_NAME} "
            f"beside it): it cannot be restored; involve whoever owns the brain",
        )
    limit = reads if reads is not None else live - 1
    usable = [s for s in snapshots if s.schema_version is None or s.schema_version <= limit]
    if not usable:
        newest = snapshots[0]
        preflight.fail(
            BRAIN_CHECKS[1],
            f"no snapshot {version} can read: the newest, {newest.path.name}, is at "
            f"schema {newest.schema_version} and {version} reads up to {limit}",
        )
    snapshot = usable[0]
    age = _age(snapshot.taken_at)
    purpose = snapshot.describe_purpose()
    purpose = (", " if snapshot.upgrade_run else " ") + purpose if purpose else ""
    detail = f"{snapshot.path.name}: taken {age} ago{purpose}, schema {snapshot.schema_version}, {_size(snapshot.size)}"
    if snapshot.age_seconds() > brain.max_snapshot_age_hours * 3600:
        preflight.warn(BRAIN_CHECKS[1], f"{detail} — older than {brain.max_snapshot_age_hours:g}h: more data is lost")
    else:
        preflight.passed(BRAIN_CHECKS[1], detail)
    problem = verify(snapshot)
    if problem or snapshot.schema_version is None:
        preflight.fail(
            BRAIN_CHECKS[2],
            f"{problem or 'its schema version cannot be read'}; the snapshot is unusable, nothing was touched",
        )
    preflight.passed(
        BRAIN_CHECKS[2], "checksum and integrity check pass" if snapshot.checksum else "integrity check passes"
    )
    return snapshot


def _check_room(brain: Path, snapshot: Snapshot, preflight: Preflight) -> None:
    free = shutil.disk_usage(brain.parent).free
    needed = snapshot.size + DISK_MARGIN_BYTES
    if free < needed:
        preflight.fail(BRAIN_CHECKS[3], f"{_size(free)} free beside the brain; the staged copy needs {_size(needed)}")
    preflight.passed(BRAIN_CHECKS[3], f"{_size(free)} free; the staged copy needs {_size(snapshot.size)}")
    problem = hard_links_work(brain.parent) or ownership_problem(brain)
    if problem:
        preflight.fail(BRAIN_CHECKS[4], problem)
    preflight.passed(BRAIN_CHECKS[4], f"{brain.parent} allows atomic renames and hard links")


def _check_holders(brain: Path, docker: DockerFacts, service: tuple[str, ...], preflight: Preflight) -> None:
    """Only the Engine may hold the brain: anything else that has it open, or mounts its folder,
    would go on writing to the file the swap moves aside. Refused here, before anything is touched."""
    holders, unreadable = holders_before_stop(brain, docker, service)
    if holders:
        preflight.fail(
            BRAIN_CHECKS[6],
            f"the brain is held by more than the Engine: {describe_holders(holders)}; its "
            "writes would be split from the restored brain. Stop it, then try again",
        )
    unseen = f" ({unreadable} process(es) could not be read)" if unreadable else ""
    preflight.passed(
        BRAIN_CHECKS[6],
        f"no other container mounts {brain.parent} and no other process of this host has {brain.name} open{unseen}",
    )


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
