"""The core's one front door: plan, execute, cancel, recover, history.

Front ends (terminal, Slack) call these and render what comes back; none of them touches the
journal, Docker or Compose directly. Every plan is journaled, refused ones included, so
`history` is the whole story of what was asked and what was done.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from bot.brain_swap import brain_in_place
from bot.config import Config, TargetConfig
from bot.errors import InvalidRequest
from bot.health import Health
from bot.plan import Plan, RollbackRequest, Systems, make_plan
from bot.runner import ProgressSink, Runner
from bot.snapshots import Snapshot, list_snapshots, take_snapshot, verify
from storage import Journal, RunStatus, RunView
from storage.repository import NewRun


@dataclass(frozen=True)
class PlannedRun:
    run: RunView
    plan: Plan


class Rollbot:
    def __init__(self, config: Config, journal: Journal, systems: Systems, health: Health) -> None:
        self.config = config
        self._journal = journal
        self._systems = systems
        self._health = health

    def plan(self, request: RollbackRequest) -> PlannedRun:
        """Preflight the request and journal the plan (as `planned`, or `refused` with why)."""
        plan = make_plan(request, self.config, self._systems, self.runs_in_progress)
        record = NewRun(
            target=request.target,
            to_version=request.version,
            requester=request.requester,
            reason=request.reason,
            environment=plan.environment,
            from_version=plan.running_version,
            steps=[(step.kind.value, step.description) for step in plan.steps],
            plan=plan.to_dict(),
        )
        run = self._journal.record_plan(record, actor=request.requester, refusal=plan.refusal)
        return PlannedRun(run, plan)

    def execute(self, planned: PlannedRun, actor: str, sink: ProgressSink | None = None) -> RunView:
        runner = Runner(self.config, self._journal, self._systems, self._health, actor, process_owner())
        return runner.execute(planned.run.id, planned.plan, sink)

    def cancel(self, run_id: str, actor: str, why: str) -> None:
        self._journal.cancel(run_id, actor, why)

    def recover_interrupted(self) -> list[tuple[RunView, str | None]]:
        """Runs whose process died mid-way are marked interrupted, with the step they were in
        and, for brain restores, which brain file is in place now (journaled too)."""
        actor = f"rollbot@{process_owner()}"
        found = []
        for run in self._journal.mark_interrupted(owner_alive, actor=actor):
            brain = self.brain_in_place(run)
            if brain:
                self._journal.note(run.id, actor, "brain.inspected", {"in_place": brain})
            found.append((run, brain))
        return found

    def brain_in_place(self, run: RunView) -> str | None:
        """For a run that began a brain swap: which brain sits at the brain's path now."""
        swap = next((e for e in self._journal.run(run.id).events if e.kind == "brain.swap"), None)
        if swap is None:
            return None
        brain = Path(swap.details["brain"])
        which = brain_in_place(brain, swap.details["original_inode"], swap.details["staged_inode"])
        return {
            "original": f"the original brain is in place at {brain} (the swap did not happen)",
            "snapshot": f"the restored snapshot is in place at {brain}; the original is in {swap.details['forensic_dir']}",
            "missing": f"NO brain file at {brain}: the original is in {swap.details['forensic_dir']}",
            "other": f"an unknown file is at {brain}; the original is in {swap.details['forensic_dir']}",
        }[which]

    def take_snapshot(self, target_name: str, actor: str) -> Snapshot:
        """A consistent copy of the live brain, taken while the Engine keeps running."""
        target = self._brain_target(target_name)
        assert target.brain is not None
        container_id = self._systems.compose_for(target).container_id(target.service)
        container = self._systems.docker.container(container_id) if container_id else None
        snapshot = take_snapshot(target.brain, container.tag if container else None)
        self._journal.note(None, actor, "snapshot.taken", {"target": target.name, **snapshot.to_dict()})
        return snapshot

    def snapshots(self, target_name: str) -> list[tuple[Snapshot, str | None]]:
        """Every snapshot of the target's brain, newest first, with what is wrong with it (or None)."""
        target = self._brain_target(target_name)
        assert target.brain is not None
        return [(snapshot, verify(snapshot)) for snapshot in list_snapshots(target.brain)]

    def _brain_target(self, name: str) -> TargetConfig:
        target = self.config.target(name)
        if target is None:
            raise InvalidRequest(f"unknown target {name!r}; configured targets: {', '.join(sorted(self.config.targets))}")
        if target.brain is None:
            raise InvalidRequest(f"target {name} has no brain configured (targets.{name}.brain)")
        return target

    def history(self, target: str | None = None, limit: int = 20) -> list[RunView]:
        return self._journal.runs(target, limit)

    def run(self, run_id: str) -> RunView:
        return self._journal.run(run_id)

    def runs_in_progress(self, target: str) -> list[str]:
        return [run.id for run in self._journal.runs(target, limit=10, status=RunStatus.RUNNING)]


def process_owner() -> str:
    """Who is running a run: `host:pid`, enough to tell later whether that process still lives."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the process named by `owner` exists. A process on another host is assumed alive."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
