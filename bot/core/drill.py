"""The rollback drill: the runbook's quarterly exercise, run for real, timed, and compared.

"A rollback you've never practiced is a rollback that won't go to plan." A drill notes the
version running, takes a snapshot, upgrades to a deliberately broken tag with the same runner
(forward), waits until health shows it is broken, rolls back with the normal plan (approved by
the drill itself, which the journal says), verifies, and reports where the time went against the
drills before it. The drill is a run of kind `drill` whose steps are these phases; the upgrade
and the rollback are ordinary runs that name their drill.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from bot.brain.snapshots import Snapshot
from bot.config import Config
from bot.core.outcomes import PlannedRun, ServiceState
from bot.errors import InvalidRequest, RollbotError
from bot.logs import about_run
from bot.planning.brain_plan import BrainChoice
from bot.planning.plan import Rehearsal, RollbackRequest
from bot.running.liveness import heartbeat, process_owner
from bot.running.state import ProgressSink
from bot.running.summary import RunSummary
from bot.tags import describe_invalid_tag, is_valid_tag
from storage import EventKind, Journal, RunStatus, RunView, StepStatus
from storage.repository import NewRun

DRILL = "drill"
STALE_DRILL = timedelta(days=90)
DRILLED_BY = "drill"


class Phase(StrEnum):
    NOTE_VERSION = "note_version"
    SNAPSHOT = "snapshot"
    UPGRADE = "upgrade_to_broken"
    WAIT_BROKEN = "wait_until_broken"
    ROLLBACK = "rollback"
    VERIFY = "verify"


PHASES = {
    Phase.NOTE_VERSION: "note the version running",
    Phase.SNAPSHOT: "take a snapshot of the brain",
    Phase.UPGRADE: "upgrade to the deliberately broken tag (the runner, forward)",
    Phase.WAIT_BROKEN: "wait until health shows it is broken",
    Phase.ROLLBACK: "roll back with the normal plan, approved by the drill",
    Phase.VERIFY: "verify health on the version that ran before",
}


class DrillFailed(RollbotError):
    """A phase did not go as the drill needs; the message says what and what state it left."""


class DrillCore(Protocol):
    """The few things a drill asks of the core (bot/core/rollbot.py, which starts drills): a drill
    plans and runs rollbacks as a person would, so it goes through the same front door."""

    @property
    def config(self) -> Config: ...

    def service_state_of(self, target_name: str) -> ServiceState: ...

    def take_snapshot(self, target_name: str, actor: str) -> Snapshot: ...

    def plan(self, request: RollbackRequest) -> PlannedRun: ...

    def execute(
        self,
        planned: PlannedRun,
        actor: str,
        sink: ProgressSink | None = None,
        approver: str | None = None,
        postmortem: bool = True,
    ) -> RunView: ...

    def cancel(self, run_id: str, actor: str, why: str) -> None: ...

    def remember(self, run_id: str, **context: object) -> None: ...


def rehearsal(journal: Journal, target: str, rehearsed_by: list[str], now: datetime | None = None) -> Rehearsal | None:
    """From the drills of `target` and of the targets that rehearse it, newest first; None without any."""
    drills = sorted(
        (
            run
            for name in [target, *rehearsed_by]
            for run in journal.runs(name, limit=10, kind=DRILL)
            if run.status.is_final
        ),
        key=lambda run: run.created_at,
        reverse=True,
    )
    if not drills:
        return None
    newest = drills[0]
    good = [run for run in drills if run.status is RunStatus.SUCCEEDED][:3]
    took = [run.summary["rollback_seconds"] for run in good if run.summary.get("rollback_seconds") is not None]
    down = [run.summary["downtime_seconds"] for run in good if run.summary.get("downtime_seconds") is not None]
    age = (now or datetime.now(UTC)) - newest.created_at
    warning = None
    if newest.status is not RunStatus.SUCCEEDED:
        warning = f"the newest drill ({newest.id}) {newest.status.value}: {newest.error}"
    elif age > STALE_DRILL:
        warning = f"the newest drill is {age.days} days old; the runbook asks for one a quarter"
    return Rehearsal(
        len(drills),
        statistics.median(took) if took else None,
        statistics.median(down) if down else None,
        newest.created_at,
        newest.status is RunStatus.SUCCEEDED,
        warning,
    )


class Drill:
    """One drill of one target, phase by phase, each journaled like a runner's step."""

    def __init__(
        self,
        rollbot: DrillCore,
        journal: Journal,
        target: str,
        broken: str,
        actor: str,
        sink: ProgressSink | None = None,
        rollback_sink: Callable[[RunView], ProgressSink | None] | None = None,
    ) -> None:
        self._rollbot = rollbot
        self._journal = journal
        self._target = target
        self._broken = broken
        self._actor = actor
        self._sink = sink or (lambda event: None)
        self._rollback_sink = rollback_sink or (lambda run: None)
        self._facts: dict[str, Any] = {}

    def run(self) -> RunView:
        """Run the drill to its end; the drill run's summary holds the report."""
        self._check_allowed()
        record = NewRun(
            target=self._target,
            to_version=self._broken,
            requester=self._actor,
            kind=DRILL,
            reason=f"drill with the broken tag {self._broken}",
            environment=self._rollbot.config.targets[self._target].environment,
            steps=[(phase.value, text) for phase, text in PHASES.items()],
        )
        drill = self._journal.record_plan(record, actor=self._actor)
        self._id = drill.id
        owner = process_owner()
        self._sink(self._journal.start(drill.id, self._actor, owner, approver=DRILLED_BY))
        with about_run(drill.id), heartbeat(self._journal, drill.id, owner):
            return self._phases(drill)

    def _phases(self, drill: RunView) -> RunView:
        started = time.monotonic()
        phases = {
            Phase.NOTE_VERSION: self._note_version,
            Phase.SNAPSHOT: self._snapshot,
            Phase.UPGRADE: self._upgrade,
            Phase.WAIT_BROKEN: self._wait_broken,
            Phase.ROLLBACK: self._roll_back,
            Phase.VERIFY: self._verify,
        }
        for position, (phase, work) in enumerate(phases.items()):
            self._sink(self._journal.step_started(drill.id, position, self._actor))
            try:
                detail = work()
            except (DrillFailed, InvalidRequest) as error:
                self._sink(
                    self._journal.step_finished(drill.id, position, self._actor, StepStatus.FAILED, {}, str(error))
                )
                return self._finish(RunStatus.FAILED, started, f"phase {phase} failed: {error}")
            status = StepStatus.SKIPPED if detail.pop("skipped", False) else StepStatus.SUCCEEDED
            self._sink(self._journal.step_finished(drill.id, position, self._actor, status, detail))
        return self._finish(RunStatus.SUCCEEDED, started, None)

    def _check_allowed(self) -> None:
        target = self._rollbot.config.target(self._target)
        if target is None:
            known = ", ".join(sorted(self._rollbot.config.targets)) or "none"
            raise InvalidRequest(f"unknown target {self._target!r}; configured targets: {known}")
        if not target.drills_allowed:
            raise InvalidRequest(
                f"{target.name} is a {target.environment} target: drills break it on purpose, so "
                f"they are refused there unless its config says allow_drills: true"
            )
        if not is_valid_tag(self._broken):
            raise InvalidRequest(describe_invalid_tag(self._broken))

    def _note_version(self) -> dict[str, Any]:
        state = self._rollbot.service_state_of(self._target)
        if state.image is None or state.healthy is not True:
            raise DrillFailed(f"{self._target} must be running and healthy before a drill ({state.describe()})")
        self._facts["version"] = state.image.rsplit(":", 1)[-1]
        if self._facts["version"] == self._broken:
            raise DrillFailed(
                f"{self._target} already runs {self._broken}; name a tag that differs from the running one"
            )
        return {"version": self._facts["version"], "image": state.image}

    def _snapshot(self) -> dict[str, Any]:
        if self._rollbot.config.targets[self._target].brain is None:
            return {"skipped": True, "why": "the target has no brain"}
        snapshot = self._rollbot.take_snapshot(self._target, self._actor)
        return {"snapshot": str(snapshot.path), "schema": snapshot.schema_version, "bytes": snapshot.size}

    def _upgrade(self) -> dict[str, Any]:
        planned = self._plan(self._broken, BrainChoice.KEEP, "deliberately broken upgrade")
        run = self._rollbot.execute(planned, self._actor, approver=DRILLED_BY, postmortem=False)
        self._facts["upgrade"] = run.id
        if run.status is RunStatus.SUCCEEDED:
            raise DrillFailed(
                f"{self._broken} came up healthy, so it is not a broken release; "
                f"{self._target} now runs it (run {run.id})"
            )
        if run.current_step != "verify_health":
            raise DrillFailed(
                f"the upgrade to {self._broken} failed in step {run.current_step}, not at its health "
                f"check: {run.error} (run {run.id})"
            )
        return {"run": run.id, "seconds": RunSummary.from_dict(run.summary).seconds}

    def _wait_broken(self) -> dict[str, Any]:
        state = self._rollbot.service_state_of(self._target)
        if state.healthy:
            raise DrillFailed(f"{self._target} answers healthy on {self._broken}; the drill needs it broken")
        return {"health": state.health}

    def _roll_back(self) -> dict[str, Any]:
        version = self._facts["version"]
        planned = self._plan(version, BrainChoice.AUTO, "rolling back")
        if planned.plan.question:  # the drill took a snapshot a moment ago: it is the one to restore
            self._rollbot.cancel(planned.run.id, self._actor, "the drill answers the brain question: restore")
            planned = self._plan(version, BrainChoice.RESTORE, "rolling back")
        run = self._rollbot.execute(
            planned, self._actor, self._rollback_sink(planned.run), approver=DRILLED_BY, postmortem=False
        )
        self._facts["rollback"] = run
        if run.status is not RunStatus.SUCCEEDED:
            raise DrillFailed(f"the rollback to {version} {run.status.value}: {run.error} (run {run.id})")
        summary = RunSummary.from_dict(run.summary)
        return {"run": run.id, "seconds": summary.seconds, "downtime_seconds": summary.downtime_seconds}

    def _verify(self) -> dict[str, Any]:
        state = self._rollbot.service_state_of(self._target)
        expected = self._facts["version"]
        if not state.healthy or not (state.image or "").endswith(f":{expected}"):
            raise DrillFailed(f"after the rollback {self._target} is not healthy on {expected}: {state.describe()}")
        return {"health": state.health, "image": state.image}

    def _plan(self, version: str, brain: BrainChoice, what: str) -> PlannedRun:
        request = RollbackRequest(self._target, version, self._actor, f"drill {self._id}: {what}", brain, practice=True)
        planned = self._rollbot.plan(request)
        self._rollbot.remember(planned.run.id, drill=self._id)
        if planned.plan.refusal and not planned.plan.question:
            raise DrillFailed(f"preflight refused the {what} to {version}: {planned.plan.refusal}")
        if not planned.plan.question:
            self._journal.note(
                planned.run.id,
                self._actor,
                EventKind.RUN_APPROVED,
                {"by": DRILLED_BY, "drill": self._id, "why": "approved automatically within the drill"},
            )
        return planned

    def _finish(self, status: RunStatus, started: float, error: str | None) -> RunView:
        drill = self._journal.run(self._id)
        summary = report(drill, self._facts.get("rollback"), self._previous(), time.monotonic() - started)
        next_action = None
        if status is not RunStatus.SUCCEEDED:
            next_action = (
                f"check {self._target} with `rollbot history {self._target}`; the drill's runs say where it stopped"
            )
        self._sink(self._journal.finish(self._id, self._actor, status, error, next_action, summary))
        return self._journal.run(self._id)

    def _previous(self) -> RunView | None:
        earlier = [
            run
            for run in self._journal.runs(self._target, limit=10, kind=DRILL)
            if run.id != self._id and run.status is RunStatus.SUCCEEDED
        ]
        return earlier[0] if earlier else None


def report(drill: RunView, rollback: RunView | None, previous: RunView | None, total: float) -> dict[str, Any]:
    """Where the time went, and how that compares with the last successful drill of the target."""
    phases = {step.name: _round(step.seconds) for step in drill.steps if step.status is StepStatus.SUCCEEDED}
    steps = {
        step.name: _round(step.seconds)
        for step in (rollback.steps if rollback else ())
        if step.status is StepStatus.SUCCEEDED
    }
    slowest = max(steps, key=lambda name: steps[name] or 0.0) if steps else None
    rolled_back = RunSummary.from_dict(rollback.summary) if rollback else None
    summary: dict[str, Any] = {
        "phases": phases,
        "rollback_steps": steps,
        "total_seconds": _round(total),
        "rollback_seconds": rolled_back.seconds if rolled_back else None,
        "downtime_seconds": rolled_back.downtime_seconds if rolled_back else None,
        "slowest_step": slowest,
        "slowest_step_seconds": steps.get(slowest) if slowest else None,
        "previous_drill": previous.id if previous else None,
        # the rollback's chart of error rate and latency (when the target has metrics), as in its postmortem
        "chart": next((s.detail["chart"] for s in (rollback.steps if rollback else ()) if s.detail.get("chart")), None),
    }
    if previous is not None and summary["rollback_seconds"] is not None:
        before = previous.summary.get("rollback_seconds")
        if before:
            summary["rollback_change_seconds"] = _round(summary["rollback_seconds"] - before)
            summary["rollback_change_percent"] = round(100 * (summary["rollback_seconds"] - before) / before, 1)
        if slowest and previous.summary.get("rollback_steps", {}).get(slowest) is not None:
            summary["slowest_step_change_seconds"] = _round(
                steps[slowest] - previous.summary["rollback_steps"][slowest]
            )
    return summary


def describe_report(drill: RunView) -> list[str]:
    """The report as lines, for the terminal and for Slack."""
    summary = drill.summary
    lines = [
        f"drill {drill.id} of {drill.target} with {drill.to_version}: {drill.status.value}"
        + (f" — {drill.error}" if drill.error else "")
    ]
    for name, seconds in summary.get("phases", {}).items():
        lines.append(f"  {name}: {seconds}s")
    if summary.get("rollback_steps"):
        lines.append(f"rollback: {summary.get('rollback_seconds')}s, downtime {summary.get('downtime_seconds')}s")
        for name, seconds in summary["rollback_steps"].items():
            mark = "  ← slowest" if name == summary.get("slowest_step") else ""
            lines.append(f"  {name}: {seconds}s{mark}")
    lines.append(f"total: {summary.get('total_seconds')}s")
    if summary.get("chart"):
        lines.append(f"chart of error rate and latency: {summary['chart']}")
    if summary.get("previous_drill"):
        change = summary.get("rollback_change_seconds")
        if change is not None:
            lines.append(
                f"against the last drill ({summary['previous_drill']}): rollback {change:+.2f}s "
                f"({summary.get('rollback_change_percent'):+.1f}%)"
                + (
                    f", slowest step {summary['slowest_step']} {summary['slowest_step_change_seconds']:+.2f}s"
                    if summary.get("slowest_step_change_seconds") is not None
                    else ""
                )
            )
    else:
        lines.append("no earlier successful drill of this target to compare with")
    return lines


def _round(seconds: float | None) -> float | None:
    return round(seconds, 2) if seconds is not None else None
