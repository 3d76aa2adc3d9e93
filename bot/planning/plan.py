"""The plan: what a rollback will do and why, computed from the request and live facts.

A plan is data. It lists every preflight check with its result and the steps the runner will take; front
ends render it, the journal stores it, and the runner executes it. Nothing here changes anything: preflight
only looks. A check that fails refuses the whole plan, and those that depend on it are reported as not run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.adapters.compose_file import ImageSite, check_tag_edit, image_site
from bot.brain.external import ExternalEffects, destructive_calls
from bot.config import Config, TargetConfig
from bot.errors import RollbotError
from bot.planning.brain_plan import BRAIN_CHECKS, BrainChoice, BrainPlan, RunningFacts, preflight_brain
from bot.planning.judgement import Judgement
from bot.planning.kept_images import KeptVersions
from bot.planning.preflight import Check, CheckResult, Preflight, Refused
from bot.planning.target_checks import CHECKS as TARGET_CHECKS
from bot.planning.target_checks import check_image, check_running_version, service_container
from bot.planning.upgrade_checks import (
    UPGRADE_CHECKS,
    KnownBadOf,
    LastRunOf,
    check_direction,
    check_known_bad,
    preflight_upgrade_brain,
    upgrade_facts,
)
from bot.ports import Compose, DockerFacts, ImageSource, Metrics, RegressionEval
from bot.tags import ImageRef, describe_invalid_tag, is_valid_tag
from storage import RunKind
from storage.schemas import SchemaSighting

# Every plan's checks in order: the target's, then which way it goes and whether the version is known-bad.
CHECKS = (*TARGET_CHECKS[:7], *UPGRADE_CHECKS, *TARGET_CHECKS[7:])


@dataclass(frozen=True)
class RollbackRequest:
    target: str
    version: str
    requester: str
    reason: str = ""
    brain: BrainChoice = BrainChoice.AUTO
    kind: RunKind = RunKind.ROLLBACK  # as asked; a rollback to a newer version is planned as an upgrade
    practice: bool = False  # a drill's: its broken tag is known-bad on purpose, so that check does not apply


class StepKind(StrEnum):
    CAPTURE_LOGS = "capture_logs"
    STAGE_SNAPSHOT = "stage_snapshot"
    SET_IMAGE_TAG = "set_image_tag"
    PULL = "pull"
    SNAPSHOT_BRAIN = "snapshot_brain"  # an upgrade's pre-upgrade snapshot, just before the stop
    STOP = "stop"
    SWAP_BRAIN = "swap_brain"
    START = "start"
    VERIFY_HEALTH = "verify_health"


@dataclass(frozen=True)
class PlannedStep:
    kind: StepKind
    description: str
    skip_reason: str | None = None


@dataclass(frozen=True)
class Rehearsal:
    """What earlier drills say about rolling this target back: shown on its plans."""

    drills: int
    expected_seconds: float | None
    expected_downtime: float | None
    newest_at: datetime | None
    newest_succeeded: bool
    warning: str | None

    def describe(self) -> str:
        if self.expected_seconds is None:
            return self.warning or "no successful drill on record"
        downtime = f", downtime ~{self.expected_downtime:.0f}s" if self.expected_downtime is not None else ""
        return (
            f"expected duration from the last drills: ~{self.expected_seconds:.0f}s{downtime} "
            f"({self.drills} drill(s), newest {self.newest_at:%Y-%m-%d})"
        )


@dataclass(frozen=True)
class Plan:
    request: RollbackRequest
    checks: tuple[Check, ...]
    steps: tuple[PlannedStep, ...] = ()
    environment: str | None = None
    running_version: str | None = None
    current_image: str | None = None
    target_image: str | None = None
    container_id: str | None = None
    container_ids: tuple[str, ...] = ()  # every container of the service (scale > 1), newest first; never one-offs
    image_file: str | None = None  # the file whose line the rollback edits (a compose file, or .env)
    image_variable: str | None = None  # set when that line is `VARIABLE=tag` in .env
    image_source: ImageSource | None = None
    brain: BrainPlan | None = None
    rehearsal: Rehearsal | None = None  # what earlier drills say; shown, never blocking
    kept: KeptVersions | None = None  # earlier versions still available; a warning when too few
    judgement: Judgement | None = None  # the runbook's "when to roll back", measured: the evidence block
    external: ExternalEffects | None = None  # the bad window's destructive calls: what no rollback undoes
    kind: RunKind = RunKind.ROLLBACK  # what the run is: a rollback, or an upgrade (asked, or rolling forward)
    rolls_forward: bool = False  # a rollback request to a newer version, planned as an upgrade

    @property
    def upgrades(self) -> bool:
        return self.kind is RunKind.UPGRADE

    @property
    def refusal(self) -> str | None:
        """The first blocking check's reason: the one line a refused person reads."""
        blocking = next((c for c in self.checks if c.result.blocks), None)
        return blocking.detail if blocking else None

    @property
    def question(self) -> str | None:
        """Set when preflight stopped to ask a person (e.g. restore the brain or keep it)."""
        blocking = next((c for c in self.checks if c.result.blocks), None)
        return blocking.detail if blocking and blocking.result is CheckResult.ASK else None

    @property
    def image_site(self) -> ImageSite | None:
        return ImageSite(Path(self.image_file), self.image_variable) if self.image_file else None

    @property
    def restores_brain(self) -> bool:
        return self.brain is not None and self.brain.restore

    @property
    def approvable(self) -> bool:
        return self.refusal is None and bool(self.steps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for the journal: paths, times and enums become strings."""
        as_json: dict[str, Any] = json.loads(json.dumps(asdict(self), default=str))
        return as_json

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """The approved plan, read back to resume its run: after a crash the facts changed, so it is never re-made."""
        asked = data["request"]
        return cls(
            request=RollbackRequest(
                asked["target"],
                asked["version"],
                asked["requester"],
                asked.get("reason", ""),
                BrainChoice(asked.get("brain", BrainChoice.AUTO)),
                RunKind(asked.get("kind", RunKind.ROLLBACK)),
                bool(asked.get("practice")),
            ),
            checks=tuple(Check(c["name"], CheckResult(c["result"]), c["detail"]) for c in data.get("checks", [])),
            steps=tuple(
                PlannedStep(StepKind(s["kind"]), s["description"], s.get("skip_reason")) for s in data.get("steps", [])
            ),
            environment=data.get("environment"),
            running_version=data.get("running_version"),
            current_image=data.get("current_image"),
            target_image=data.get("target_image"),
            container_id=data.get("container_id"),
            container_ids=tuple(data.get("container_ids") or ()),
            image_file=data.get("image_file"),
            image_variable=data.get("image_variable"),
            image_source=ImageSource(data["image_source"]) if data.get("image_source") else None,
            brain=BrainPlan.from_dict(data["brain"]) if data.get("brain") else None,
            judgement=Judgement.from_dict(data["judgement"]) if data.get("judgement") else None,
            external=ExternalEffects.from_dict(data["external"]) if data.get("external") else None,
            kind=RunKind(data.get("kind", RunKind.ROLLBACK)),
            rolls_forward=bool(data.get("rolls_forward")),
        )


@dataclass(frozen=True)
class Systems:
    """The outside systems preflight and the runner talk to, built in one composition root."""

    docker: DockerFacts
    compose_for: Callable[[TargetConfig], Compose]
    metrics: Metrics | None = None  # the Engine's Prometheus, for the judgement and the all-clear
    evals: RegressionEval | None = None


RunsInProgress = Callable[[str], list[str]]
SchemaSeenOf = Callable[[str, str], SchemaSighting | None]  # (target, version) -> what rollbot saw


@dataclass(frozen=True)
class _History:
    """What preflight reads from the journal, as callables so that planning never holds a journal."""

    runs_in_progress: RunsInProgress
    schema_seen: SchemaSeenOf
    known_bad: KnownBadOf
    last_run: LastRunOf


def make_plan(
    request: RollbackRequest,
    config: Config,
    systems: Systems,
    runs_in_progress: RunsInProgress = lambda _: [],
    schema_seen: SchemaSeenOf = lambda target, version: None,
    known_bad: KnownBadOf = lambda target, version: None,
    last_run: LastRunOf = lambda target: None,
) -> Plan:
    """Run preflight for a rollback or an upgrade and lay out its steps. Looks; never touches."""
    preflight = Preflight(list(CHECKS))
    facts: dict[str, Any] = {"kind": request.kind}
    try:
        history = _History(runs_in_progress, schema_seen, known_bad, last_run)
        _preflight(request, config, systems, history, preflight, facts)
    except Refused:
        return Plan(request, preflight.finish(), **facts)
    except RollbotError as error:
        name = preflight.remaining[0] if preflight.remaining else "preflight"
        preflight.record(name, CheckResult.FAILED, str(error))
        return Plan(request, preflight.finish(), **facts)
    checks = preflight.finish()
    if any(check.result.blocks for check in checks):  # a question: no steps until it is answered
        return Plan(request, checks, **facts)
    return Plan(request, checks, _steps(config.targets[request.target], facts), **facts)


def _preflight(
    request: RollbackRequest,
    config: Config,
    systems: Systems,
    history: _History,
    preflight: Preflight,
    facts: dict[str, Any],
) -> None:
    target = config.target(request.target)
    if target is None:
        known = ", ".join(sorted(config.targets)) or "none"
        preflight.fail(CHECKS[0], f"unknown target {_shown(request.target)}; configured targets: {known}")
    facts["environment"] = target.environment
    if target.brain is not None:
        preflight.remaining.extend(BRAIN_CHECKS)
    preflight.passed(
        CHECKS[0], f"{target.name} ({target.environment}): service '{target.service}' in {target.compose_file}"
    )

    if not is_valid_tag(request.version):
        preflight.fail(CHECKS[1], describe_invalid_tag(request.version))
    preflight.passed(CHECKS[1], f"{request.version} is a valid tag")

    compose = systems.compose_for(target)
    service = compose.service(target.service)
    site = image_site(service, target.service)
    check_tag_edit(site, target.service, request.version)
    configured = ImageRef.parse(service.image)
    target_image = str(configured.with_tag(request.version))
    facts.update(
        current_image=str(configured),
        target_image=target_image,
        running_version=configured.tag,
        image_file=str(site.path),
        image_variable=site.variable,
    )
    preflight.passed(
        CHECKS[2],
        f"service '{target.service}' of project {service.project} runs image {configured} (set in {site.describe()})",
    )

    busy = history.runs_in_progress(target.name)
    if busy:
        preflight.fail(
            CHECKS[3],
            f"run {busy[0]} of {target.name} is in progress (running, or interrupted and "
            f"holding it until resumed or aborted); see `rollbot history`",
        )
    preflight.passed(CHECKS[3], "no run of this target is in progress")

    container = service_container(target, compose, systems.docker, facts)
    check_running_version(request.version, target, configured, container, service, preflight, facts)
    found = check_direction(request.kind, facts.get("running_version"), request.version, preflight)
    upgrade_facts(found, facts)
    check_known_bad(target, request.version, history.known_bad, preflight, request.practice)
    check_image(target_image, target, systems.docker, preflight, facts)
    if target.brain is not None:
        running = RunningFacts(
            version=facts.get("running_version"),
            went_live=container.created_at if container is not None else None,
            seen=lambda version: history.schema_seen(target.name, version),
            container_ids=tuple(facts.get("container_ids", ())),
        )
        if found.kind is RunKind.UPGRADE:
            facts["brain"] = preflight_upgrade_brain(
                target.brain,
                request.version,
                target_image,
                systems.docker,
                preflight,
                running,
                history.last_run(target.name),
            )
            return
        facts["brain"] = preflight_brain(
            target.brain, request.version, target_image, request.brain, systems.docker, preflight, running
        )
        if target.brain.external_calls is not None:
            snapshot = facts["brain"].snapshot
            since = running.went_live or (snapshot.taken_at if snapshot is not None else None)
            facts["external"] = destructive_calls(target.brain.path, target.brain.external_calls, since)


def _steps(target: TargetConfig, facts: dict[str, Any]) -> tuple[PlannedStep, ...]:
    """The runbook's order: evidence, stage, tag, pull, drain-stop, swap, start, verify."""
    service = target.service
    has_container = facts.get("container_id") is not None
    pulls = facts.get("image_source") is ImageSource.REGISTRY
    brain: BrainPlan | None = facts.get("brain")
    steps = [
        PlannedStep(
            StepKind.CAPTURE_LOGS,
            f"save the logs of {service} {facts.get('running_version')} since it was started, across its restarts"
            + (f" ({len(facts['container_ids'])} containers)" if len(facts.get("container_ids", ())) > 1 else ""),
            None if has_container else "no container to capture logs from",
        ),
        PlannedStep(StepKind.SET_IMAGE_TAG, _edit_description(facts)),
        PlannedStep(
            StepKind.PULL,
            f"docker compose pull {service}",
            None if pulls else "the image is already on this host and not in its registry",
        ),
        PlannedStep(StepKind.STOP, f"docker compose stop --timeout {target.drain_timeout} {service} (drain)"),
        PlannedStep(StepKind.START, f"docker compose up -d {service}"),
        PlannedStep(StepKind.VERIFY_HEALTH, f"poll {target.health_url} until ok, at most {target.health_timeout}s"),
    ]
    if facts.get("kind") is RunKind.UPGRADE and brain is not None and brain.live_schema is not None:
        steps.insert(
            3,
            PlannedStep(
                StepKind.SNAPSHOT_BRAIN,
                f"snapshot {brain.path.name} while {facts.get('running_version')} still runs (the pre-upgrade snapshot)",
            ),
        )
    if brain is not None and brain.restore and brain.snapshot is not None:
        name = brain.snapshot.path.name
        steps.insert(
            1, PlannedStep(StepKind.STAGE_SNAPSHOT, f"copy snapshot {name} beside the brain and verify the copy")
        )
        steps.insert(
            5,
            PlannedStep(
                StepKind.SWAP_BRAIN,
                f"move {brain.path.name} aside (forensic copy) and put the staged snapshot in its place",
            ),
        )
    return tuple(steps)


def _edit_description(facts: dict[str, Any]) -> str:
    edited = Path(facts["image_file"]).name
    if facts.get("image_variable"):
        return (
            f"set {facts['image_variable']} in {edited} to {facts['target_image'].rsplit(':', 1)[-1]} "
            f"(the image becomes {facts['target_image']})"
        )
    return f"switch the image in {edited} to {facts['target_image']}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
