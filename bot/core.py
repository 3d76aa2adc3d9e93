"""The core's one front door: plan, execute, cancel, recover, history.

Front ends (terminal, Slack) call these and render what comes back; none of them touches the
journal, Docker or Compose directly. Every plan is journaled, refused ones included, so
`history` is the whole story of what was asked and what was done.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from bot.config import Config
from bot.health import Health
from bot.plan import Plan, RollbackRequest, Systems, make_plan
from bot.runner import ProgressSink, Runner
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

    def recover_interrupted(self) -> list[RunView]:
        """Runs whose process died mid-way are marked interrupted, with the step they were in."""
        return self._journal.mark_interrupted(owner_alive, actor=f"rollbot@{process_owner()}")

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
