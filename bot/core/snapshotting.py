"""Snapshots of a target's brain on demand, and the list of those on disk with what is wrong with each."""

from __future__ import annotations

from bot.brain.snapshots import Snapshot, brain_lock, described_snapshots, take_snapshot, verify
from bot.config import BrainConfig, Config, TargetConfig
from bot.core.queries import Queries
from bot.core.sightings import saw_healthy
from bot.errors import InvalidRequest
from bot.planning.approvals import MembersOf, may_request
from bot.planning.plan import Systems
from bot.ports import Health
from storage import EventKind, Journal


class Snapshotting:
    def __init__(self, config: Config, journal: Journal, systems: Systems, health: Health, queries: Queries) -> None:
        self._config = config
        self._journal = journal
        self._systems = systems
        self._health = health
        self._queries = queries

    def take_snapshot(self, target_name: str, actor: str, members_of: MembersOf | None = None) -> Snapshot:
        """A consistent copy of the live brain, taken while the Engine keeps running.

        From Slack `members_of` is given and only the target's requesters may take one (copies of
        the production brain fill its disk); at the terminal, whoever can run rollbot may. The
        brain's lock is taken before looking for a run of the target, so a snapshot and a restore
        never overlap (see bot/brain/snapshots.py). The image tag is recorded only from a running
        container: a stopped one says nothing about what wrote the brain."""
        target, brain = self._brain_target(target_name)
        if members_of is not None:
            verdict = may_request(actor, target, members_of)
            if not verdict.allowed:
                raise InvalidRequest(verdict.reason)
        with brain_lock(brain.path, f"a snapshot of {target.name}'s brain asked by {actor}"):
            busy = self._queries.runs_in_progress(target.name)
            if busy:
                raise InvalidRequest(f"run {busy[0]} of {target.name} is in progress; take the snapshot after it ends")
            container_id = self._systems.compose_for(target).container_id(target.service)
            container = self._systems.docker.container(container_id) if container_id else None
            running = container if container is not None and container.running else None
            snapshot = take_snapshot(brain, running.tag if running else None)
        self._journal.note(None, actor, EventKind.SNAPSHOT_TAKEN, {"target": target.name, **snapshot.to_dict()})
        if (
            running is not None
            and snapshot.schema_version is not None
            and self._health.wait_until_healthy(target.health_url, timeout=2).ok
        ):
            saw_healthy(self._journal, target, running.tag, "snapshot", snapshot.schema_version)
        return snapshot

    def snapshots(self, target_name: str) -> list[tuple[Snapshot, str | None]]:
        """Every snapshot of the target's brain, newest first, with what is wrong with it (or None):
        the file's own problem first, else why its sidecar was not believed."""
        _, brain = self._brain_target(target_name)
        return [(snapshot, verify(snapshot) or disbelief) for snapshot, disbelief in described_snapshots(brain)]

    def _brain_target(self, name: str) -> tuple[TargetConfig, BrainConfig]:
        """The target and its brain, or a refusal that says which configuration is missing."""
        target = self._config.target(name)
        if target is None:
            raise InvalidRequest(
                f"unknown target {name!r}; configured targets: {', '.join(sorted(self._config.targets))}"
            )
        if target.brain is None:
            raise InvalidRequest(f"target {name} has no brain configured (targets.{name}.brain)")
        return target, target.brain
