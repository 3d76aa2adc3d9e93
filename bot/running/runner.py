"""The runner: executes an approved plan step by step, journaling each step before and after.

The order is the runbook's: capture the bad version's logs (evidence first, before the container
is replaced), switch the tag, pull, drain-stop, start, verify health. A step that fails stops
the run; steps before the drain-stop are undone (the compose file is put back), so a run that
fails early leaves the service exactly as it was. From the drain-stop on, the run only moves
forward, and the journal says what state the service is in and what a person should do next.

This module is the loop and the run's outcomes; the step bodies, compensation, resuming and
the journal's writes live in their own modules of `bot.running`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from tenacity import Retrying

from bot.config import Config, TargetConfig
from bot.logs import about_run
from bot.planning.plan import Plan, StepKind, Systems
from bot.ports import Health
from bot.running.compensation import Compensation
from bot.running.failpoints import failpoint
from bot.running.journal_writes import JournalDown, JournalWrites, journal_next_action, journal_retry
from bot.running.liveness import HEARTBEAT_SECONDS, heartbeat
from bot.running.outcome import describe_failure, summarise, with_brain
from bot.running.resume import read_back, step_reached, take_up
from bot.running.state import BEFORE_STOP, DONE, ProgressSink, RunState, StepFailed
from bot.running.steps import StepBodies
from bot.running.summary import RunSummary
from storage import EventKind, EventView, Journal, Lease, LostRun, RunStatus, RunView, StepStatus

__all__ = ["JournalDown", "ProgressSink", "Runner", "StepFailed", "describe_failure", "journal_retry"]

log = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        config: Config,
        journal: Journal,
        systems: Systems,
        health: Health,
        actor: str,
        owner: str,
        clock: Callable[[], float] = time.monotonic,
        stopping: threading.Event | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        on_healthy: Callable[[TargetConfig, str], None] = lambda target, version: None,
        retry: Retrying | None = None,
    ) -> None:
        self._config = config
        self._journal = journal
        self._systems = systems
        self._actor = actor
        self._owner = owner
        self._clock = clock
        self._stopping = stopping or threading.Event()
        self._heartbeat_seconds = heartbeat_seconds
        self._writes = JournalWrites(journal, actor, retry or journal_retry())
        self._bodies = StepBodies(
            self._writes, systems.docker, health, config.evidence_dir, clock, on_healthy, systems.metrics
        )
        self._compensation = Compensation(self._writes, systems.docker, config.evidence_dir)

    def execute(
        self, run_id: str, plan: Plan, sink: ProgressSink | None = None, approver: str | None = None
    ) -> RunView:
        """Run every step of an approved plan; returns the run as the journal now describes it.

        Claiming the run is the first write: `NotStartable` (already started, cancelled, or the
        target busy) propagates before anything is touched."""
        if not plan.approvable:
            raise ValueError(f"plan of run {run_id} is not approvable: {plan.refusal}")
        state = self._state(run_id, plan)
        notify = _safe(sink)
        claimed = self._journal.start(run_id, self._actor, self._owner, approver)
        state.lease = Lease.of(claimed.details)
        notify(claimed)
        return self._run(state, notify, done=frozenset())

    def resume(self, run: RunView, by: str, sink: ProgressSink | None = None) -> RunView:
        """Go on with an interrupted run from where the journal says it stopped.

        The plan is the one that was approved (read back, never re-made: the facts changed when
        the service was stopped). Steps that finished are not repeated; the step that was in
        flight runs again, and every step is written to be harmless when its work was already
        done. Raises `NotStartable` when the run is not interrupted or its target is busy."""
        state = self._state(run.id, Plan.from_dict(run.plan))
        notify = _safe(sink)
        take_up(self._journal, state, run, EventKind.RUN_RESUMED, self._actor, self._owner, by, notify)
        read_back(state, run, self._config.evidence_dir)
        return self._run(state, notify, done=frozenset(s.position for s in run.steps if s.status in DONE))

    def abort(self, run: RunView, by: str, sink: ProgressSink | None = None) -> RunView:
        """Close an interrupted run without going on. Only what the run changed before the
        drain-stop is undone (the compose file, the staged copy), so an abort before the stop
        leaves the service exactly as it was; after it, the service is left as it is and the
        journal and the channel say what state that is and what to do."""
        state = self._state(run.id, Plan.from_dict(run.plan))
        notify = _safe(sink)
        take_up(self._journal, state, run, EventKind.RUN_ABORTING, self._actor, self._owner, by, notify)
        read_back(state, run, self._config.evidence_dir)
        kind = step_reached(run)
        try:
            undone = self._compensation.undo_before_stop(state, kind)
            where, next_action = describe_failure(state.plan, state.target, kind, undone)
            where = with_brain(state, where)
            summary = self._summary(state, self._clock(), healthy=False, service_state=where, failed_step=kind)
            notify(
                self._writes.write(
                    self._writes.finish(
                        state, RunStatus.ABORTED, f"aborted by {by} at step {kind}", next_action, summary
                    )
                )
            )
        except LostRun as lost:
            return self._lost(state, lost)
        return self._journal.run(run.id)

    def _state(self, run_id: str, plan: Plan) -> RunState:
        target = self._config.targets[plan.request.target]
        return RunState(plan, target, run_id, self._systems.compose_for(target))

    def _run(self, state: RunState, notify: ProgressSink, done: frozenset[int]) -> RunView:
        """The steps, under a heartbeat. A runner that lost its lease stops where it learns it
        (`LostRun`), before its next side effect; a journal that cannot be written stops the run
        before the drain-stop and is written afterwards once the service was stopped."""
        started = self._clock()
        state.notify = notify
        assert state.lease is not None
        with about_run(state.run_id), heartbeat(self._journal, state.run_id, state.lease, self._heartbeat_seconds):
            try:
                return self._steps(state, notify, done, started)
            except LostRun as lost:
                return self._lost(state, lost)
            except JournalDown as down:
                return self._stranded(state, down, started, notify)

    def _steps(self, state: RunState, notify: ProgressSink, done: frozenset[int], started: float) -> RunView:
        run_id = state.run_id
        for position, step in enumerate(state.plan.steps):
            if position in done:
                continue
            if self._stopping.is_set():
                return self._shut_down(state, step.kind, notify)
            failpoint(f"step:before:{step.kind}")
            # Bound now: a write kept for later (the journal down after the stop) names this step.
            self._writes.boundary(
                state, notify, partial(self._journal.step_started, run_id, position, self._actor, owner=state.lease)
            )
            if step.skip_reason:
                self._writes.boundary(
                    state,
                    notify,
                    self._writes.step_end(state, position, StepStatus.SKIPPED, {"skipped": step.skip_reason}),
                )
                continue
            state.reached = step.kind
            try:
                detail = self._do(step.kind, state)
            except KeyboardInterrupt:
                self._interrupted(state, position, step.kind, notify)
                raise
            except Exception as error:
                message = str(error) if str(error) else type(error).__name__
                if not isinstance(error, StepFailed):
                    log.exception("step %s of run %s failed unexpectedly", step.kind, run_id)
                self._writes.boundary(
                    state, notify, self._writes.step_end(state, position, StepStatus.FAILED, {}, message)
                )
                return self._fail(state, step.kind, message, started, notify)
            self._writes.boundary(state, notify, self._writes.step_end(state, position, StepStatus.SUCCEEDED, detail))
            failpoint(f"step:after:{step.kind}")
        return self._succeed(state, started, notify)

    def _do(self, kind: StepKind, state: RunState) -> dict[str, Any]:
        """The one seam between the loop and a step's work: tests put a death or a take-over here."""
        return self._bodies.do(kind, state)

    def _shut_down(self, state: RunState, kind: StepKind, notify: ProgressSink) -> RunView:
        """rollbot is stopping (SIGTERM): end at this step boundary, journaled, for the next start to resume."""
        where, _ = describe_failure(state.plan, state.target, kind, undone=False)
        summary = RunSummary(service_state=with_brain(state, where), failed_step=str(kind))
        notify(
            self._writes.write(
                self._writes.finish(
                    state,
                    RunStatus.INTERRUPTED,
                    f"rollbot was shut down before step {kind}",
                    f"resume the run (its Resume button, or `rollbot resume {state.run_id}`) or abort it",
                    summary,
                )
            )
        )
        return self._journal.run(state.run_id)

    def _interrupted(self, state: RunState, position: int, kind: StepKind, notify: ProgressSink) -> None:
        notify(
            self._writes.write(
                self._writes.step_end(state, position, StepStatus.FAILED, {}, "interrupted by the operator")
            )
        )
        where, next_action = describe_failure(state.plan, state.target, kind, undone=False)
        summary = RunSummary(service_state=with_brain(state, where), failed_step=str(kind))
        notify(
            self._writes.write(
                self._writes.finish(
                    state, RunStatus.INTERRUPTED, f"interrupted during step {kind}", next_action, summary
                )
            )
        )

    def _succeed(self, state: RunState, started: float, notify: ProgressSink) -> RunView:
        summary = self._summary(state, started, healthy=True)
        return self._writes.end(state, RunStatus.SUCCEEDED, None, None, summary, notify)

    def _fail(self, state: RunState, kind: StepKind, message: str, started: float, notify: ProgressSink) -> RunView:
        undone = self._compensation.undo_before_stop(state, kind)
        brain = self._compensation.put_brain_back(state, kind, notify)
        where, next_action = describe_failure(state.plan, state.target, kind, undone)
        after_failure = None
        if brain is not None and not brain.ok:
            where = f"{state.target.service} is stopped and the compose file names {state.plan.request.version}; {brain.text}"
            next_action = brain.text
        else:
            back = self._compensation.back_to_previous(state, kind, brain, notify)
            if back is not None:
                where, next_action, after_failure = back.where, back.next_action, back.done
        summary = self._summary(
            state, started, healthy=False, service_state=where, failed_step=kind, after_failure=after_failure
        )
        return self._writes.end(state, RunStatus.FAILED, f"step {kind} failed: {message}", next_action, summary, notify)

    def _stranded(self, state: RunState, down: JournalDown, started: float, notify: ProgressSink) -> RunView:
        """The journal failed before the drain-stop: nothing is stopped, so the run ends here, its
        own changes (the compose file, the staged copy) undone, and says so in its last message."""
        state.journal_down = str(down)  # no lease can be asked; undoing its own edit is the safe way
        kind = state.reached or state.plan.steps[0].kind
        undone = self._compensation.undo_before_stop(state, kind if kind in BEFORE_STOP else StepKind.PULL)
        where, _ = describe_failure(state.plan, state.target, StepKind.PULL, undone)
        summary = self._summary(state, started, healthy=False, service_state=where, failed_step=kind)
        return self._writes.end(
            state,
            RunStatus.FAILED,
            f"the journal could not be written ({down}); the run stopped before step {kind}",
            journal_next_action(state, down),
            summary,
            notify,
        )

    def _lost(self, state: RunState, lost: LostRun) -> RunView:
        log.error("run %s was taken over by another process; this one stops: %s", state.run_id, lost)
        return self._journal.run(state.run_id)

    def _summary(
        self,
        state: RunState,
        started: float,
        healthy: bool,
        service_state: str | None = None,
        failed_step: StepKind | None = None,
        after_failure: str | None = None,
    ) -> RunSummary:
        return summarise(state, self._seconds_since(state, started), healthy, service_state, failed_step, after_failure)

    def _seconds_since(self, state: RunState, started: float) -> float:
        if state.began_at is not None:  # resumed: the run took all the time since it first started
            return (datetime.now(UTC) - state.began_at).total_seconds()
        return self._clock() - started


def _safe(sink: ProgressSink | None) -> ProgressSink:
    """Progress display must never fail a rollback: its errors are logged and dropped."""

    def notify(event: EventView) -> None:
        if sink is None:
            return
        try:
            sink(event)
        except Exception:
            log.exception("progress sink failed on event %s", event.kind)

    return notify
