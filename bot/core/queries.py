"""The core's read side: what is running, what the journal holds, what drills and metrics say.

Looking changes nothing a person asked for; the one write here is a schema sighting when
`status` sees a version healthy (see bot/core/sightings.py).
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import NoResultFound

from bot.brain.facts import schema_version
from bot.brain.snapshots import list_snapshots
from bot.config import Config, TargetConfig
from bot.core.drill import rehearsal
from bot.core.outcomes import ServiceState, TargetStatus
from bot.core.sightings import saw_healthy
from bot.errors import InvalidRequest, RollbotError
from bot.planning.brain_plan import RunningFacts, target_reads
from bot.planning.judgement import Call
from bot.planning.kept_images import KeptVersions, kept_versions
from bot.planning.plan import Rehearsal, Systems
from bot.planning.previous_good import HealthySighting, VersionChoice, known_versions, previous_good
from bot.ports import Health
from bot.reporting.metrics import render as render_metrics
from bot.reporting.tickets import TicketDesk
from bot.tags import ImageRef
from storage import RUNNER_KINDS, HealthRecord, Journal, RunKind, RunStatus, RunView
from storage.runstate import HOLDING

log = logging.getLogger(__name__)


class Queries:
    def __init__(
        self, config: Config, journal: Journal, systems: Systems, health: Health, tickets: TicketDesk | None
    ) -> None:
        self._config = config
        self._journal = journal
        self._systems = systems
        self._health = health
        self._tickets = tickets

    def status(self) -> list[TargetStatus]:
        return [self._target_status(target) for target in self._config.targets.values()]

    def _target_status(self, target: TargetConfig) -> TargetStatus:
        container_id = self._systems.compose_for(target).container_id(target.service)
        container = self._systems.docker.container(container_id) if container_id else None
        health = self._health.wait_until_healthy(target.health_url, timeout=2)
        if health.ok and container is not None and container.running:
            saw_healthy(self._journal, target, container.tag, "status")
        snapshots = list_snapshots(target.brain) if target.brain else []
        busy = self.runs_in_progress(target.name)
        return TargetStatus(
            name=target.name,
            environment=target.environment,
            running_version=container.tag if container else None,
            container_state=container.state if container else "no container",
            healthy=health.ok,
            health=health.describe(),
            newest_snapshot=snapshots[0] if snapshots else None,
            run_in_progress=busy[0] if busy else None,
            kept=self.kept(container.image if container else None, target.keep_images),
            known_bad=tuple(
                mark.describe() for mark in self._journal.known_bad_versions(target.name, active_only=True)
            ),
        )

    def kept(self, running_image: str | None, keep: int) -> KeptVersions | None:
        """The earlier versions still available; looking is best effort and never fails a plan."""
        if not running_image:
            return None
        try:
            return kept_versions(self._systems.docker, running_image, keep)
        except RollbotError as error:
            log.warning("could not count the earlier versions of %s: %s", running_image, error)
            return None

    def previous_good(self, target_name: str) -> VersionChoice:
        """The version to roll back to when none is named (see bot/planning/previous_good.py)."""
        running, seen, kept = self._version_facts(target_name)
        choice = previous_good(running, seen, kept)
        if choice is None:
            raise InvalidRequest(
                f"rollbot knows no earlier version of {target_name} (it saw none healthy and found no earlier "
                f"image); name the version, e.g. `rollback {target_name} 2.3.1`"
            )
        return choice

    def known_versions(self, target_name: str) -> tuple[list[str], VersionChoice | None]:
        """The versions a person may pick for `target_name`, newest first, and the previous good one."""
        running, seen, kept = self._version_facts(target_name)
        return known_versions(running, seen, kept), previous_good(running, seen, kept)

    def asks_about_brain(self, target_name: str, version: str) -> bool:
        """Whether a plan to `version` would have to ask whether to restore the brain: none of
        the facts of bot/planning/brain_plan.py tells which schema it reads. Looks at local facts
        only (the image's label on this host, the journal, the snapshots); when it cannot look,
        False: the plan itself then asks, if it must."""
        target = self._config.target(target_name)
        if target is None or target.brain is None or not target.brain.path.is_file():
            return False
        try:
            compose = self._systems.compose_for(target)
            configured = ImageRef.parse(compose.service(target.service).image)
            container_id = compose.container_id(target.service)
            container = self._systems.docker.container(container_id) if container_id else None
            live = schema_version(target.brain.path, target.brain.schema_query)
            running = RunningFacts(
                version=configured.tag,
                went_live=container.created_at if container is not None else None,
                seen=lambda seen_version: self._journal.schema_seen(target.name, seen_version),
            )
            snapshots = list_snapshots(target.brain)
            evidence = target_reads(
                version, str(configured.with_tag(version)), self._systems.docker, snapshots, live, running
            )
        except RollbotError as error:
            log.warning("could not tell whether %s %s reads the brain: %s", target_name, version, error)
            return False
        return evidence.reads is None

    def _version_facts(self, target_name: str) -> tuple[str | None, list[HealthySighting], KeptVersions | None]:
        target = self._config.target(target_name)
        if target is None:
            known = ", ".join(sorted(self._config.targets))
            raise InvalidRequest(f"unknown target {target_name!r}; configured targets: {known}")
        container_id = self._systems.compose_for(target).container_id(target.service)
        container = self._systems.docker.container(container_id) if container_id else None
        seen = [
            HealthySighting(s.version, s.last_seen, f"healthy on brain schema {s.schema}, by {s.source}")
            for s in self._journal.versions_seen_healthy(target.name)
        ]
        seen += [
            HealthySighting(run.to_version, run.finished_at, f"healthy at the end of run {run.id}")
            for run in self._journal.runs(target.name, limit=50, status=RunStatus.SUCCEEDED, kind=RUNNER_KINDS)
            if run.finished_at is not None
        ]
        # The version an upgrade replaced, when the upgrade's plan judged it healthy (no brain, so no
        # sighting by the upgrade's snapshot step): the version to go back to after that upgrade.
        seen += [
            HealthySighting(run.from_version, run.started_at, f"healthy when upgrade run {run.id} began")
            for run in self._journal.runs(target.name, limit=20, kind=RunKind.UPGRADE)
            if run.from_version and run.started_at and (run.plan.get("judgement") or {}).get("call") == Call.DONT
        ]
        kept = self.kept(container.image if container else None, target.keep_images)
        return (container.tag if container else None), seen, kept

    def rehearsal(self, target_name: str) -> Rehearsal | None:
        """What the drills of a target (and of the targets that rehearse it) say about rolling it back."""
        stand_ins = [t.name for t in self._config.targets.values() if t.rehearses == target_name]
        return rehearsal(self._journal, target_name, stand_ins)

    def service_state_of(self, target_name: str) -> ServiceState:
        """The target's container image and its health, looked at now."""
        target = self._config.targets[target_name]
        try:
            container_id = self._systems.compose_for(target).container_id(target.service)
            container = self._systems.docker.container(container_id) if container_id else None
        except Exception as error:  # noqa: BLE001 - a report must go out even when Docker does not answer
            log.warning("could not look at %s's container: %s", target.name, error)
            container = None
        health = self._health.wait_until_healthy(target.health_url, timeout=2)
        return ServiceState(
            image=container.image if container else None,
            container_state=container.state if container else "no container",
            healthy=health.ok,
            health=health.describe(),
        )

    def health_record(self, target_name: str) -> HealthRecord | None:
        """What rollbot's own /health probes saw of the target (bot/core/probe_record.py); None
        when it never probed it or the journal cannot say: "since when" is then less precise."""
        try:
            return self._journal.health_record(target_name)
        except Exception as error:  # noqa: BLE001 - evidence is best effort; a verdict still comes
            log.warning("could not read the /health probes of %s: %s", target_name, error)
            return None

    def metrics(self) -> bytes:
        """rollbot's own metrics in Prometheus' text format, read from the journal now."""
        return render_metrics(self._config, self._journal, self._tickets.outbox if self._tickets else None)

    def history(self, target: str | None = None, limit: int = 20) -> list[RunView]:
        return self._journal.runs(target, limit)

    def run(self, run_id: str) -> RunView:
        return self._journal.run(run_id)

    def find_run(self, run_id: str) -> RunView | None:
        try:
            return self._journal.run(run_id)
        except NoResultFound:
            return None

    def runs_in_progress(self, target: str) -> list[str]:
        """The rollbacks that hold `target`: running ones, and interrupted ones, which left the
        service half-way and hold it until they are resumed or aborted."""
        return [
            run.id
            for status in HOLDING
            for run in self._journal.runs(target, limit=10, status=status, kind=RUNNER_KINDS)
        ]
