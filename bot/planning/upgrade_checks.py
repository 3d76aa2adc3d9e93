"""Preflight checks that decide between a rollback and an upgrade, and those only an upgrade has.

Both directions pass the same target checks (bot/planning/target_checks.py). Then: which way the
request goes (bot/planning/direction.py), whether the version asked for is known-bad (rolled back
from, and not cleared: "root cause first"), and, for an upgrade, the brain: it is kept for the new
version to migrate, a snapshot of it is taken just before the stop, and when an earlier rollback
restored it, what the forensic copy's rows mean for the version going in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.brain.facts import schema_version
from bot.brain.snapshots import list_snapshots
from bot.config import BrainConfig, TargetConfig
from bot.planning.brain_plan import BRAIN_CHECKS, BrainPlan, RunningFacts, target_reads
from bot.planning.direction import DIRECTION_CHECK, Direction, direction, restored_brain_note
from bot.planning.preflight import Preflight
from bot.ports import DockerFacts
from storage import KnownBad, RunKind, RunView

KNOWN_BAD_CHECK = "not a known-bad version"
RESTORED_BRAIN_CHECK = "brain restored by the last rollback"
UPGRADE_CHECKS = (DIRECTION_CHECK, KNOWN_BAD_CHECK)

KnownBadOf = Callable[[str, str], KnownBad | None]  # (target, version) -> its active mark
LastRunOf = Callable[[str], RunView | None]  # target -> its newest succeeded rollback or upgrade


def check_direction(asked: RunKind, running: str | None, version: str, preflight: Preflight) -> Direction:
    """Rollback or upgrade; an upgrade to an older version is refused, naming the rollback command."""
    found = direction(running, version, asked)
    if found.refusal:
        preflight.fail(DIRECTION_CHECK, found.refusal)
    preflight.passed(DIRECTION_CHECK, found.why)
    return found


def check_known_bad(
    target: TargetConfig, version: str, known_bad: KnownBadOf, preflight: Preflight, practice: bool = False
) -> None:
    """The runbook's "root cause first": a version rolled back from is not deployed again until cleared.
    A drill (`practice`) deploys its broken tag on purpose, so the rule does not apply to it."""
    if practice:
        preflight.passed(KNOWN_BAD_CHECK, f"a drill deploys {version} on purpose: known-bad versions do not apply")
        return
    mark = known_bad(target.name, version)
    if mark is not None:
        preflight.fail(
            KNOWN_BAD_CHECK,
            f"root cause first: {mark.describe()}. Once the cause is understood, clear it with "
            f"`rollbot clear {target.name} {version} --reason TEXT` (or `/rollback clear {target.name} "
            f"{version} TEXT`, or Clear on the run's message in Slack)",
        )
    preflight.passed(KNOWN_BAD_CHECK, f"{version} was never rolled back from, or was cleared since")


def preflight_upgrade_brain(
    brain: BrainConfig,
    version: str,
    target_image: str,
    docker: DockerFacts,
    preflight: Preflight,
    running: RunningFacts,
    last_run: RunView | None,
) -> BrainPlan:
    """An upgrade keeps the brain; it is snapshotted just before the stop, and a brain that the
    last run restored is named with its forensic copy and whether those rows can be replayed."""
    if not brain.path.is_file():
        preflight.warn(BRAIN_CHECKS[0], f"no brain at {brain.path}; there is nothing to snapshot")
        preflight.not_applicable(BRAIN_CHECKS)
        return BrainPlan(brain.path, None, None, "", restore=False)
    live = schema_version(brain.path, brain.schema_query)
    preflight.passed(
        BRAIN_CHECKS[0],
        f"the brain (schema {live}) is kept for {version}, which migrates it if it must; a snapshot of it "
        f"is taken just before the stop, the pre-upgrade snapshot any rollback of this upgrade restores",
    )
    preflight.not_applicable(BRAIN_CHECKS[1:])
    evidence = target_reads(version, target_image, docker, list_snapshots(brain), live, running)
    if last_run is not None and last_run.kind == RunKind.ROLLBACK and last_run.summary.get("forensic_copy"):
        preflight.warn(
            RESTORED_BRAIN_CHECK, restored_brain_note(last_run, version, evidence.reads, evidence.source, live)
        )
    return BrainPlan(brain.path, live, evidence.reads, evidence.source, restore=False)


def upgrade_facts(found: Direction, facts: dict[str, Any]) -> None:
    """What the plan keeps of the direction: the run's kind, and whether it rolls forward."""
    facts["kind"] = found.kind
    facts["rolls_forward"] = found.rolls_forward
