"""The runner: executes an approved plan step by step, journaling each step before and after.

The order is the runbook's: capture the bad version's logs (evidence first, before the container
is replaced), switch the tag, pull, drain-stop, start, verify health. A step that fails stops
the run; steps before the drain-stop are undone (the compose file is put back), so a run that
fails early leaves the service exactly as it was. From the drain-stop on, the run only moves
forward, and the journal says what state the service is in and what a person should do next.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot.brain.facts import BrainError, loss_report
from bot.brain.holders import describe_holders, holders_after_stop
from bot.brain.swap import (
    Staged,
    Swapped,
    brain_in_place,
    staged_path,
    discard_staged,
    forensic_dir,
    prepare_swap,
    put_back,
    stage,
    swap,
)
from bot.adapters.compose import compose_command
from bot.adapters.compose_file import ComposeEdit, ImageSite, image_in, set_tag
from bot.config import Config, TargetConfig
from bot.errors import JournalError, RollbotError
from bot.reporting.evidence import redacted_inspect, run_folder
from bot.running.failpoints import failpoint
from bot.files import write_atomically
from bot.running.liveness import HEARTBEAT_SECONDS, heartbeat
from bot.logs import about_run
from bot.planning.plan import Plan, Systems, StepKind
from bot.ports import Compose, Health, HealthResult
from bot.running.fingerprints import changes_since, left_by
from storage import EventKind, EventView, Journal, Lease, LostRun, NotStartable, RunKind, RunStatus, RunView, StepStatus

log = logging.getLogger(__name__)

ProgressSink = Callable[[EventView], None]
BEFORE_STOP = frozenset({StepKind.CAPTURE_LOGS, StepKind.STAGE_SNAPSHOT, StepKind.SET_IMAGE_TAG, StepKind.PULL})
DONE = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED})


class StepFailed(RollbotError):
    """A step could not do its work; the message is what the journal and the person see."""


class JournalDown(JournalError):
    """The journal could not be written, retries included, before the drain-stop: the run ends."""


def _transient(error: BaseException) -> bool:
    """A database failure worth another try (locked, full, unreachable); a constraint the
    database enforces (one run per target) is an answer, not a failure."""
    return isinstance(error, SQLAlchemyError) and not isinstance(error, IntegrityError)


def journal_retry(attempts: int = 5, first_wait: float = 0.2, max_wait: float = 3.0) -> Retrying:
    """How the runner retries a journal write: a few attempts over some seconds, enough for a
    busy or restarting database, short enough not to hold a stopped Engine down for long."""
    return Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=first_wait, max=max_wait),
                    retry=retry_if_exception(_transient), reraise=True)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0] if text else type(error).__name__


@dataclass
class _RunState:
    """What the run has done so far, which decides how a failure is described and undone."""

    plan: Plan
    target: TargetConfig
    run_id: str
    compose: Compose
    edit: ComposeEdit | None = None
    log_file: Path | None = None
    stop_started: float | None = None
    stop_started_at: datetime | None = None  # from the journal, when the stop began before a restart
    began_at: datetime | None = None  # when a resumed run first started: its total counts from there
    health: HealthResult | None = None
    downtime: float | None = None
    staged: Staged | None = None
    swapped: Swapped | None = None
    lease: Lease | None = None  # the fencing token every write of this runner names
    reached: StepKind | None = None  # the step whose work began last
    past_stop: bool = False  # the drain-stop has begun: from here the run must not strand the Engine
    journal_down: str | None = None  # why the journal could not be written, once it could not after the stop
    deferred: list[Callable[[], EventView]] = field(default_factory=list)  # writes owed to the journal


@dataclass(frozen=True)
class _BrainBack:
    """Whether the original brain is in place again after a failed restore, said in a sentence."""

    ok: bool
    text: str


@dataclass(frozen=True)
class _Started:
    """What starting the previous version again did: file put back, container running, or why not."""

    compose_put_back: bool
    running: bool
    problem: str | None = None


@dataclass(frozen=True)
class _Recovery:
    """How a failed run left the service after rollbot put it back on its feet, or tried to."""

    where: str
    next_action: str
    done: str


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
        self._health = health
        self._actor = actor
        self._owner = owner
        self._clock = clock
        self._stopping = stopping or threading.Event()
        self._heartbeat_seconds = heartbeat_seconds
        self._on_healthy = on_healthy  # the version is healthy on the brain now: worth remembering
        self._retry = retry or journal_retry()

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
        self._take_up(state, run, EventKind.RUN_RESUMED, by, notify)
        self._read_back(state, run)
        return self._run(state, notify, done=frozenset(s.position for s in run.steps if s.status in DONE))

    def abort(self, run: RunView, by: str, sink: ProgressSink | None = None) -> RunView:
        """Close an interrupted run without going on. Only what the run changed before the
        drain-stop is undone (the compose file, the staged copy), so an abort before the stop
        leaves the service exactly as it was; after it, the service is left as it is and the
        journal and the channel say what state that is and what to do."""
        state = self._state(run.id, Plan.from_dict(run.plan))
        notify = _safe(sink)
        self._take_up(state, run, EventKind.RUN_ABORTING, by, notify)
        self._read_back(state, run)
        kind = _step_reached(run)
        try:
            undone = self._undo_before_stop(state, kind)
            where, next_action = describe_failure(state.plan, state.target, kind, undone)
            where = self._with_brain(state, where)
            summary = self._summary(state, self._clock(), healthy=False, service_state=where, failed_step=kind)
            notify(self._write(lambda: self._journal.finish(
                run.id, self._actor, RunStatus.ABORTED, f"aborted by {by} at step {kind}", next_action, summary,
                owner=state.lease)))
        except LostRun as lost:
            return self._lost(state, lost)
        return self._journal.run(run.id)

    def _take_up(self, state: _RunState, run: RunView, kind: EventKind, by: str, notify: ProgressSink) -> None:
        """Reclaim an interrupted run, but only while the files it left are as it left them: a
        resume or abort acting on a compose file or brain someone changed since would overwrite
        their work (a later run's version, a brain restored by hand). `NotStartable` names what changed."""
        changed = changes_since(run)
        if changed:
            raise NotStartable(f"run {run.id} is not {'resumed' if kind is EventKind.RUN_RESUMED else 'aborted'}: "
                               f"{'; '.join(changed)} since it was interrupted. Check the service, then put them "
                               "back or close the run by hand; nothing was done")
        claimed = self._journal.reclaim(run.id, self._actor, self._owner, kind, {"by": by, "step": run.current_step})
        state.lease = Lease.of(claimed.details)
        notify(claimed)

    def _state(self, run_id: str, plan: Plan) -> _RunState:
        target = self._config.targets[plan.request.target]
        return _RunState(plan, target, run_id, self._systems.compose_for(target))

    def _run(self, state: _RunState, notify: ProgressSink, done: frozenset[int]) -> RunView:
        """The steps, under a heartbeat. A runner that lost its lease stops where it learns it
        (`LostRun`), before its next side effect; a journal that cannot be written stops the run
        before the drain-stop and is written afterwards once the service was stopped."""
        started = self._clock()
        assert state.lease is not None
        with about_run(state.run_id), heartbeat(self._journal, state.run_id, state.lease, self._heartbeat_seconds):
            try:
                return self._steps(state, notify, done, started)
            except LostRun as lost:
                return self._lost(state, lost)
            except JournalDown as down:
                return self._stranded(state, down, started, notify)

    def _steps(self, state: _RunState, notify: ProgressSink, done: frozenset[int], started: float) -> RunView:
        run_id = state.run_id
        for position, step in enumerate(state.plan.steps):
            if position in done:
                continue
            if self._stopping.is_set():
                return self._shut_down(state, step.kind, notify)
            failpoint(f"step:before:{step.kind}")
            self._boundary(state, notify, lambda: self._journal.step_started(
                run_id, position, self._actor, owner=state.lease))
            if step.skip_reason:
                self._boundary(state, notify, self._step_end(state, position, StepStatus.SKIPPED,
                                                             {"skipped": step.skip_reason}))
                continue
            state.reached = step.kind
            try:
                detail = self._do(step.kind, state)
            except KeyboardInterrupt:
                self._interrupted(state, position, step.kind, notify)
                raise
            except Exception as error:  # noqa: BLE001 - every failure is journaled, none escapes
                message = str(error) if str(error) else type(error).__name__
                if not isinstance(error, StepFailed):
                    log.exception("step %s of run %s failed unexpectedly", step.kind, run_id)
                self._boundary(state, notify, self._step_end(state, position, StepStatus.FAILED, {}, message))
                return self._fail(state, step.kind, message, started, notify)
            self._boundary(state, notify, self._step_end(state, position, StepStatus.SUCCEEDED, detail))
            failpoint(f"step:after:{step.kind}")
        return self._succeed(state, started, notify)

    def _shut_down(self, state: _RunState, kind: StepKind, notify: ProgressSink) -> RunView:
        """rollbot is stopping (SIGTERM): end at this step boundary, journaled, for the next start to resume."""
        where, _ = describe_failure(state.plan, state.target, kind, undone=False)
        notify(self._write(lambda: self._journal.finish(
            state.run_id, self._actor, RunStatus.INTERRUPTED, f"rollbot was shut down before step {kind}",
            f"resume the run (its Resume button, or `rollbot resume {state.run_id}`) or abort it",
            {"service_state": self._with_brain(state, where), "failed_step": kind}, owner=state.lease,
        )))
        return self._journal.run(state.run_id)

    # --- the journal, as the runner writes it ------------------------------------------------------

    def _write(self, write: Callable[[], EventView]) -> EventView:
        """One journal write, retried while the database fails (busy, full, unreachable); a
        refusal of the state machine (`LostRun`, `IllegalMove`) is an answer, never retried."""
        return self._retry(write)

    def _boundary(self, state: _RunState, notify: ProgressSink, write: Callable[[], EventView]) -> None:
        """A step boundary's write. Once the drain-stop has begun, a journal that stays unusable
        must not strand the Engine: the write is kept for later and the run goes on (`up`, the
        health check); before it, the run stops (`JournalDown`) and undoes what it changed."""
        if state.journal_down is not None:
            state.deferred.append(write)
            return
        try:
            notify(self._write(write))
        except SQLAlchemyError as error:
            log.error("run %s: the journal cannot be written: %s", state.run_id, error)
            if not state.past_stop:
                raise JournalDown(_first_line(error)) from error
            state.journal_down = _first_line(error)
            state.deferred.append(write)

    def _note(self, state: _RunState, notify: ProgressSink, kind: EventKind, details: dict[str, Any]) -> None:
        """A fact of the run (a put-back, a recovery), written only while the runner holds the run."""
        self._boundary(state, notify, lambda: self._journal.note(state.run_id, self._actor, kind, details,
                                                                 owner=state.lease))

    def _hold(self, state: _RunState) -> None:
        """Before a side effect outside a step (an undo, a put-back): `LostRun` unless this runner
        still holds the run. With the journal down after the stop, nothing can be asked: the
        runner goes on, since leaving the Engine stopped is the worse harm."""
        if state.journal_down is not None or state.lease is None:
            return
        lease = state.lease
        try:
            self._retry(lambda: self._journal.hold(state.run_id, lease))
        except SQLAlchemyError as error:
            if not state.past_stop:
                raise JournalDown(_first_line(error)) from error
            state.journal_down = _first_line(error)

    def _lost(self, state: _RunState, lost: LostRun) -> RunView:
        log.error("run %s was taken over by another process; this one stops: %s", state.run_id, lost)
        return self._journal.run(state.run_id)

    def _stranded(self, state: _RunState, down: JournalDown, started: float, notify: ProgressSink) -> RunView:
        """The journal failed before the drain-stop: nothing is stopped, so the run ends here, its
        own changes (the compose file, the staged copy) undone, and says so in its last message."""
        state.journal_down = str(down)  # no lease can be asked; undoing its own edit is the safe way
        kind = state.reached or state.plan.steps[0].kind
        undone = self._undo_before_stop(state, kind if kind in BEFORE_STOP else StepKind.PULL)
        where, _ = describe_failure(state.plan, state.target, StepKind.PULL, undone)
        summary = self._summary(state, started, healthy=False, service_state=where, failed_step=kind)
        return self._end(state, RunStatus.FAILED, f"the journal could not be written ({down}); the run stopped "
                         f"before step {kind}", self._journal_next_action(state, down), summary, notify)

    def _journal_next_action(self, state: _RunState, error: object) -> str:
        return (f"fix rollbot's database ({error}); the journal may still show run {state.run_id} as running: "
                f"once it is marked interrupted, check the service and abort it (`rollbot abort {state.run_id}`)")

    def _end(self, state: _RunState, status: RunStatus, error: str | None, next_action: str | None,
             summary: dict[str, Any], notify: ProgressSink) -> RunView:
        """The run's last write: first whatever the journal owes (writes kept while it failed),
        then the outcome. A journal still unusable gets the outcome in the returned view and the
        last message all the same, with where the service is: never only "the journal failed"."""
        def finish() -> EventView:
            return self._journal.finish(state.run_id, self._actor, status, error, next_action, summary,
                                        owner=state.lease)
        try:
            for write in state.deferred:
                notify(self._write(write))
            state.deferred.clear()
            notify(self._write(finish))
            return self._journal.run(state.run_id)
        except SQLAlchemyError as failure:
            log.error("run %s ended %s but the journal cannot be written: %s", state.run_id, status, failure)
            problem = state.journal_down or _first_line(failure)
            summary = {**summary, "journal": f"the journal could not be written ({problem}); "
                                             "this outcome is not in it yet"}
            view = self._unjournaled(state, status, error, next_action or self._journal_next_action(state, problem),
                                     summary)
            notify(EventView(0, state.run_id, datetime.now(UTC), self._actor, EventKind.RUN_FINISHED, status,
                             {"error": error, "next_action": view.next_action, **summary}))
            return view

    def _unjournaled(self, state: _RunState, status: RunStatus, error: str | None, next_action: str,
                     summary: dict[str, Any]) -> RunView:
        """The run as it ended, for the caller to show when the journal cannot take it."""
        try:
            known = self._journal.run(state.run_id)
        except SQLAlchemyError:
            plan = state.plan
            known = RunView(state.run_id, RunKind.ROLLBACK, state.target.name, state.target.environment,
                            plan.running_version, plan.request.version, plan.request.reason, plan.request.requester,
                            status, datetime.now(UTC), state.began_at, None, state.reached, None, None,
                            state.lease.owner if state.lease else None, {}, {})
        return replace(known, status=status, error=error, next_action=next_action, summary=summary,
                       finished_at=datetime.now(UTC))

    def _read_back(self, state: _RunState, run: RunView) -> None:
        """What the run did before it was interrupted, from the journal and the files it names."""
        steps = {StepKind(step.name): step for step in run.steps}
        state.began_at = run.started_at
        logs = steps.get(StepKind.CAPTURE_LOGS)
        if logs is not None and logs.detail.get("log_file"):
            state.log_file = Path(logs.detail["log_file"])
        stop = steps.get(StepKind.STOP)
        if stop is not None and stop.started_at is not None:
            state.past_stop = True
            state.stop_started_at = stop.started_at
            verified = steps.get(StepKind.VERIFY_HEALTH)
            if verified is not None and verified.status is StepStatus.SUCCEEDED and verified.finished_at:
                state.downtime = (verified.finished_at - stop.started_at).total_seconds()
        brain = state.plan.brain
        if brain is not None and brain.snapshot is not None and StepKind.STAGE_SNAPSHOT in steps:
            state.staged, state.swapped = _read_back_brain(run, brain.path, brain.snapshot.path)
        edit = steps.get(StepKind.SET_IMAGE_TAG)
        if edit is not None and edit.status is not StepStatus.PENDING:
            state.edit = self._read_back_edit(state)

    def _read_back_edit(self, state: _RunState) -> ComposeEdit | None:
        backup = self._backup_path(state)
        if not backup.is_file():
            return None  # the step never got as far as touching the compose file
        site = _site(state)
        before = backup.read_text(encoding="utf-8")
        old = image_in(site, before, state.target.service)
        return ComposeEdit(site.path, before, site.path.read_text(encoding="utf-8"), old, state.plan.target_image or old)

    def _do(self, kind: StepKind, state: _RunState) -> dict[str, Any]:
        return {
            StepKind.CAPTURE_LOGS: self._capture_logs,
            StepKind.STAGE_SNAPSHOT: self._stage_snapshot,
            StepKind.SWAP_BRAIN: self._swap_brain,
            StepKind.SET_IMAGE_TAG: self._set_image_tag,
            StepKind.PULL: self._pull,
            StepKind.STOP: self._stop,
            StepKind.START: self._start,
            StepKind.VERIFY_HEALTH: self._verify_health,
        }[kind](state)

    def _capture_logs(self, state: _RunState) -> dict[str, Any]:
        assert state.plan.container_id is not None
        version = state.plan.running_version or "unknown"
        destination = run_folder(self._config.evidence_dir, state.run_id) / f"{state.target.service}-{version}.log"
        containers = state.plan.container_ids or (state.plan.container_id,)
        size = self._systems.docker.save_logs(containers, destination, state.target.log_cap_bytes)
        state.log_file = destination
        inspected = destination.with_name(f"{state.target.service}-{version}.inspect.json")
        attrs = redacted_inspect(self._systems.docker.inspect(state.plan.container_id))
        inspected.write_text(json.dumps(attrs, indent=2, default=str))
        return {"log_file": str(destination), "bytes": size, "inspect_file": str(inspected),
                "containers": len(containers), "cap_bytes": state.target.log_cap_bytes}

    def _stage_snapshot(self, state: _RunState) -> dict[str, Any]:
        brain = state.plan.brain
        assert brain is not None and brain.snapshot is not None
        began = self._clock()
        state.staged = stage(brain.snapshot, brain.path, state.run_id)
        return {"snapshot": str(brain.snapshot.path), "staged": str(state.staged.path),
                "bytes": brain.snapshot.size, "checksum": state.staged.checksum,
                "seconds": round(self._clock() - began, 2)}

    def _swap_brain(self, state: _RunState) -> dict[str, Any]:
        brain = state.plan.brain
        assert brain is not None and state.staged is not None
        again = state.swapped is not None  # a resumed run whose swap had begun
        if not again:
            self._refuse_held_brain(brain.path, state.target.service)
            state.swapped = prepare_swap(brain.path, state.staged, forensic_dir(brain.path, state.run_id))
            swapped = state.swapped
            self._write(lambda: self._journal.note(state.run_id, self._actor, EventKind.BRAIN_SWAP, {
                "brain": str(brain.path), "forensic_dir": str(swapped.forensic_dir),
                "original_inode": swapped.original_inode, "staged_inode": swapped.staged_inode,
            }, owner=state.lease))
        assert state.swapped is not None
        found = brain_in_place(brain.path, state.swapped.original_inode, state.swapped.staged_inode)
        if found in ("missing", "other"):
            raise StepFailed(f"{brain.path} is {'missing' if found == 'missing' else 'neither the original nor the snapshot'}"
                             f"; the original brain is in {state.swapped.forensic_dir}")
        state.swapped = swap(brain.path, state.staged, state.swapped)
        return {"forensic_dir": str(state.swapped.forensic_dir), "moved_aside": list(state.swapped.moved_aside),
                "forensic_holds": brain.loss.describe() if brain.loss else None}

    def _refuse_held_brain(self, brain: Path, service: str) -> None:
        """The last look before the brain is moved: with the Engine stopped, nothing may hold it.
        A holder fails the step before anything is renamed, so the run's recovery starts the
        previous version again on the untouched brain, and the holder's writes stay in it."""
        holders = holders_after_stop(brain, self._systems.docker)
        if holders:
            raise StepFailed(f"the brain is still held with {service} stopped: {describe_holders(holders)}; "
                             "it was not swapped, so no write of it is lost. Stop it, then run the rollback again")

    def _set_image_tag(self, state: _RunState) -> dict[str, Any]:
        """The file that decides the image (the compose file or override preflight named, or the
        `.env` its tag comes from) is backed up before it is touched, and an earlier attempt's
        backup (a resumed run) is kept: it is the only copy of the file as it was before the run."""
        site = _site(state)
        backup = self._backup_path(state)
        if not backup.is_file():
            run_folder(self._config.evidence_dir, state.run_id)
            write_atomically(backup, site.path.read_text(encoding="utf-8"))
        before = backup.read_text(encoding="utf-8")
        edit = set_tag(site, state.target.service, state.plan.request.version)
        old_image = image_in(site, before, state.target.service)
        state.edit = replace(edit, before_text=before, old_image=old_image)
        return {"file": str(site.path), "from": old_image, "to": edit.new_image, "backup": str(backup)}

    def _backup_path(self, state: _RunState) -> Path:
        return self._config.evidence_dir / state.run_id / f"{_site(state).path.name}.before"

    def _pull(self, state: _RunState) -> dict[str, Any]:
        output = state.compose.pull(state.target.service)
        return {"output": output[-500:]}

    def _stop(self, state: _RunState) -> dict[str, Any]:
        began = self._clock()
        if state.stop_started_at is None:  # a stop that began before a restart counts from then
            state.stop_started = began
        state.past_stop = True
        state.compose.stop(state.target.service, state.target.drain_timeout)
        return {"drain_timeout": state.target.drain_timeout, "seconds": round(self._clock() - began, 2)}

    def _start(self, state: _RunState) -> dict[str, Any]:
        state.compose.up(state.target.service)
        return {"image": state.plan.target_image}

    def _verify_health(self, state: _RunState) -> dict[str, Any]:
        result = self._health.wait_until_healthy(state.target.health_url, state.target.health_timeout)
        state.health = result
        detail = {"ok": result.ok, "status_code": result.status_code, "attempts": result.attempts,
                  "seconds": round(result.seconds, 2), "body": result.body, "error": result.error}
        if not result.ok:
            raise StepFailed(f"{state.target.health_url} {result.describe()}")
        self._on_healthy(state.target, state.plan.request.version)
        if state.stop_started is not None:
            state.downtime = self._clock() - state.stop_started
        elif state.stop_started_at is not None:
            state.downtime = (datetime.now(UTC) - state.stop_started_at).total_seconds()
        return detail

    def _step_end(
        self, state: _RunState, position: int, status: StepStatus, detail: dict[str, Any], error: str | None = None
    ) -> Callable[[], EventView]:
        """The write that ends a step, with what the step left behind (the edited file and the
        brain, hashed as they are now): what a later resume or abort checks is still so."""
        brain = state.plan.brain.path if state.plan.brain is not None else None
        quiet = state.past_stop and state.reached in (StepKind.STOP, StepKind.SWAP_BRAIN)  # the Engine is stopped
        left = left_by(_site(state).path, brain, quiet)
        return lambda: self._journal.step_finished(state.run_id, position, self._actor, status, detail, error,
                                                   owner=state.lease, left=left)

    def _succeed(self, state: _RunState, started: float, notify: ProgressSink) -> RunView:
        summary = self._summary(state, started, healthy=True)
        return self._end(state, RunStatus.SUCCEEDED, None, None, summary, notify)

    def _fail(self, state: _RunState, kind: StepKind, message: str, started: float, notify: ProgressSink) -> RunView:
        undone = self._undo_before_stop(state, kind)
        brain = self._put_brain_back(state, kind, notify)
        where, next_action = describe_failure(state.plan, state.target, kind, undone)
        extra: dict[str, Any] = {}
        if brain is not None and not brain.ok:
            where = f"{state.target.service} is stopped and the compose file names {state.plan.request.version}; {brain.text}"
            next_action = brain.text
        else:
            back = self._back_to_previous(state, kind, brain, notify)
            if back is not None:
                where, next_action = back.where, back.next_action
                extra["after_failure"] = back.done
        summary = self._summary(state, started, healthy=False, service_state=where, failed_step=kind, **extra)
        return self._end(state, RunStatus.FAILED, f"step {kind} failed: {message}", next_action, summary, notify)

    def _interrupted(self, state: _RunState, position: int, kind: StepKind, notify: ProgressSink) -> None:
        notify(self._write(self._step_end(state, position, StepStatus.FAILED, {}, "interrupted by the operator")))
        where, next_action = describe_failure(state.plan, state.target, kind, undone=False)
        notify(self._write(lambda: self._journal.finish(
            state.run_id, self._actor, RunStatus.INTERRUPTED, f"interrupted during step {kind}", next_action,
            {"service_state": self._with_brain(state, where), "failed_step": kind}, owner=state.lease,
        )))

    @staticmethod
    def _with_brain(state: _RunState, where: str) -> str:
        """`where` plus which brain is in place, once a swap has begun: the one fact a person
        must not guess after an interruption."""
        brain = state.plan.brain
        if brain is None or state.swapped is None:
            return where
        which = brain_in_place(brain.path, state.swapped.original_inode, state.swapped.staged_inode)
        return (where + f"; the {'restored snapshot' if which == 'snapshot' else which + ' brain'} is at {brain.path} "
                f"and the original brain is kept in {state.swapped.forensic_dir}")

    def _undo_before_stop(self, state: _RunState, kind: StepKind) -> bool:
        """True when the failure leaves everything as it was, putting the compose file back if needed."""
        if kind not in BEFORE_STOP:
            return False
        self._hold(state)
        if state.plan.brain is not None:
            discard_staged(state.plan.brain.path, state.run_id)
        if state.edit is None:
            return True
        try:
            write_atomically(state.edit.path, state.edit.before_text)
        except OSError as error:
            log.error("could not put %s back after run %s failed: %s", state.edit.path, state.run_id, error)
            return False
        return True

    def _put_brain_back(self, state: _RunState, kind: StepKind, notify: ProgressSink) -> _BrainBack | None:
        """After the drain-stop a failed restore never ends with the snapshot in place: the
        Engine is stopped and the original brain goes back, so no data is left behind. None
        when no brain was swapped (the original never moved)."""
        brain = state.plan.brain
        if brain is None or kind in BEFORE_STOP:
            return None
        if state.swapped is None:
            discard_staged(brain.path, state.run_id)  # the swap never began: the staged copy was never used
            return None
        self._hold(state)
        try:
            if kind is not StepKind.SWAP_BRAIN:
                state.compose.stop(state.target.service, state.target.drain_timeout)
            put_back(brain.path, state.swapped)
        except Exception as error:  # noqa: BLE001 - said loudly in the journal and the summary
            log.exception("putting the original brain back failed in run %s", state.run_id)
            self._note(state, notify, EventKind.BRAIN_PUT_BACK_FAILED, {
                "brain": str(brain.path), "original": str(state.swapped.forensic_brain), "error": str(error)})
            return _BrainBack(False, f"the original brain could NOT be put back ({error}); it is at "
                                     f"{state.swapped.forensic_brain}: stop {state.target.service} and move it to "
                                     f"{brain.path} by hand")
        discard_staged(brain.path, state.run_id)
        self._note(state, notify, EventKind.BRAIN_PUT_BACK, {
            "brain": str(brain.path), "forensic_dir": str(state.swapped.forensic_dir)})
        return _BrainBack(True, f"the original brain is back at {brain.path}; the forensic folder is "
                                f"{state.swapped.forensic_dir}")

    def _back_to_previous(self, state: _RunState, kind: StepKind, brain: _BrainBack | None,
                          notify: ProgressSink) -> _Recovery | None:
        """After a failure past the drain-stop, leave the Engine running if it ran before.

        The version that ran before the rollback (degraded, but serving) is started again when
        the target version did not start, or was stopped to put the original brain back: both
        leave nothing running, and the previous version runs on the original brain as it did
        before. A target version that started but is unhealthy is left running: the previous
        one was unhealthy too (that is why the rollback began), and swapping back would cost
        another stop for no better service. None keeps `describe_failure`'s account."""
        if kind in BEFORE_STOP or kind is StepKind.STOP or state.plan.container_id is None:
            return None  # the old version is still there, or nothing ran before the rollback
        if kind is StepKind.VERIFY_HEALTH and brain is None:
            return self._leave_running(state, notify)
        if state.plan.brain is not None and not state.plan.brain.path.is_file():
            return self._brain_missing(state, kind, notify)
        outcome = self._start_previous(state, notify)
        return _describe_recovery(state, kind, brain, outcome)

    def _brain_missing(self, state: _RunState, kind: StepKind, notify: ProgressSink) -> _Recovery:
        """No brain file at all: starting the Engine would give it an empty memory, which is worse
        than leaving it stopped until a person finds the brain."""
        path, service = state.plan.brain.path if state.plan.brain else None, state.target.service
        self._note(state, notify, EventKind.RECOVERY_NOT_STARTED, {"reason": f"{path} is missing"})
        where, _ = describe_failure(state.plan, state.target, kind, undone=False)
        where = (f"{where}; {path} is missing, so {state.plan.running_version} was not started again "
                 "(it would run on an empty brain)")
        compose = compose_command(state.target.compose_file, state.target.compose_files)
        return _Recovery(where, f"find the brain and put it at {path}, then start {service} "
                                f"with `{compose}up -d {service}`",
                         "not started: the brain is missing")

    def _leave_running(self, state: _RunState, notify: ProgressSink) -> _Recovery:
        service, old, new = state.target.service, state.plan.running_version, state.plan.request.version
        self._note(state, notify, EventKind.RECOVERY_LEFT_RUNNING, {
            "version": new, "reason": f"{old} was unhealthy too; stopping {new} would only add downtime"})
        where = (f"{service} is now on {new} but unhealthy; it was left running: {old} was unhealthy too (the reason "
                 f"for the rollback), and going back to it would stop {service} again for no better service")
        _, next_action = describe_failure(state.plan, state.target, StepKind.VERIFY_HEALTH, undone=False)
        return _Recovery(where, next_action, f"left {new} running")

    def _start_previous(self, state: _RunState, notify: ProgressSink) -> _Started:
        """Put the edited file (compose file, override or .env) back as it was before the run and
        `up -d` the previous version."""
        run_id, service, old = state.run_id, state.target.service, state.plan.running_version
        before = self._text_before(state)
        edited = state.edit.path if state.edit is not None else _site(state).path
        if before is None:
            return _Started(False, False, f"{edited} as it was before the run is not known")
        self._hold(state)
        try:
            write_atomically(edited, before)
        except OSError as error:
            self._note(state, notify, EventKind.RECOVERY_COMPOSE_PUT_BACK_FAILED, {"error": str(error)})
            return _Started(False, False, f"the compose file could not be put back to {old} ({error}); "
                                          f"its copy from before the run is {self._backup_path(state)}")
        self._note(state, notify, EventKind.RECOVERY_COMPOSE_PUT_BACK, {
            "compose_file": str(edited), "version": old})
        try:
            state.compose.up(service)
        except Exception as error:  # noqa: BLE001 - journaled and said in the failure message
            log.warning("starting %s %s again after run %s failed: %s", service, old, run_id, error)
            self._note(state, notify, EventKind.RECOVERY_PREVIOUS_START_FAILED, {
                "version": old, "error": str(error)})
            return _Started(True, False, str(error))
        running = self._service_running(state)
        self._note(state, notify, EventKind.RECOVERY_PREVIOUS_STARTED, {
            "version": old, "running": running})
        return _Started(True, running, None if running else f"`up -d` returned but no {service} container is running")

    def _text_before(self, state: _RunState) -> str | None:
        if state.edit is not None:
            return state.edit.before_text
        backup = self._backup_path(state)
        return backup.read_text(encoding="utf-8") if backup.is_file() else None

    def _service_running(self, state: _RunState) -> bool:
        """Whether the service has a running container now, as the daemon says; False when it cannot tell."""
        try:
            container_id = state.compose.container_id(state.target.service)
            facts = self._systems.docker.container(container_id) if container_id else None
        except Exception:  # noqa: BLE001 - an unanswered question is "not known to run"
            log.warning("cannot tell whether %s runs after run %s", state.target.service, state.run_id)
            return False
        return facts is not None and facts.running

    def _summary(self, state: _RunState, started: float, healthy: bool, **extra: Any) -> dict[str, Any]:
        return {
            "new_version": state.plan.request.version,
            "previous_version": state.plan.running_version,
            "healthy": healthy,
            "seconds": round(self._seconds_since(state, started), 2),
            "downtime_seconds": round(state.downtime, 2) if state.downtime is not None else None,
            "log_file": str(state.log_file) if state.log_file else None,
            "health": state.health.describe() if state.health else None,
            **self._brain_summary(state, healthy),
            **{key: str(value) for key, value in extra.items()},
        }

    def _seconds_since(self, state: _RunState, started: float) -> float:
        if state.began_at is not None:  # resumed: the run took all the time since it first started
            return (datetime.now(UTC) - state.began_at).total_seconds()
        return self._clock() - started

    @staticmethod
    def _brain_summary(state: _RunState, restored: bool) -> dict[str, Any]:
        """What the forensic copy holds, counted from the files at the end of the run: rows written
        between the plan and the drain-stop are in it too, and the count must say so."""
        brain = state.plan.brain
        if brain is None or not brain.restore or brain.snapshot is None:
            return {"brain": "not restored"}
        summary: dict[str, Any] = {
            "brain": f"restored from {brain.snapshot.path.name}" if _snapshot_in_place(state) else "not restored",
            "snapshot": str(brain.snapshot.path),
            "forensic_copy": str(state.swapped.forensic_brain) if state.swapped else None,
        }
        if state.swapped is not None:
            try:
                held = loss_report(state.swapped.forensic_brain, brain.snapshot.path)
                summary.update(forensic_holds=held.describe(), rows_rolled_back=held.total_rows)
            except BrainError as error:
                summary.update(forensic_holds=f"could not be counted: {error}", rows_rolled_back=None)
        return summary


def _site(state: _RunState) -> ImageSite:
    """Where the plan said the tag is written; a plan journaled before plans named it edits the compose file."""
    return state.plan.image_site or ImageSite(state.target.compose_file)


def _snapshot_in_place(state: _RunState) -> bool:
    brain, swapped = state.plan.brain, state.swapped
    if brain is None or swapped is None:
        return False
    return brain_in_place(brain.path, swapped.original_inode, swapped.staged_inode) == "snapshot"


def _step_reached(run: RunView) -> StepKind:
    """The step an interrupted run was in, or the next it would have taken."""
    for step in run.steps:
        if step.status not in DONE:
            return StepKind(step.name)
    return StepKind(run.steps[-1].name)


def _read_back_brain(run: RunView, brain: Path, snapshot: Path) -> tuple[Staged | None, Swapped | None]:
    """The staged copy and the swap of a run that was interrupted, as the journal recorded them.
    The staged file's inode is read from the file while it exists, and from the swap's note once
    the swap has renamed it into place."""
    staging = next((s for s in run.steps if s.name == StepKind.STAGE_SNAPSHOT), None)
    note = next((e.details for e in reversed(run.events) if e.kind == "brain.swap"), None)
    staged = None
    if staging is not None and staging.status is StepStatus.SUCCEEDED:
        path = staged_path(brain, run.id)
        inode = path.stat().st_ino if path.exists() else (note or {}).get("staged_inode", -1)
        staged = Staged(path, inode, staging.detail.get("checksum", ""), snapshot)
    if note is None:
        return staged, None
    forensic = Path(note["forensic_dir"])
    swapped = Swapped(forensic, forensic / brain.name, note["original_inode"], note["staged_inode"], ())
    return staged, swapped


def _describe_recovery(state: _RunState, kind: StepKind, brain: _BrainBack | None, started: _Started) -> _Recovery:
    """The service state and next command after the previous version was started again, or not."""
    target, plan = state.target, state.plan
    service, old, new = target.service, plan.running_version, plan.request.version
    compose = compose_command(target.compose_file, target.compose_files)
    retry = f"rollbot rollback {target.name} {new}"
    why = {StepKind.START: f"{new} did not start", StepKind.SWAP_BRAIN: "the brain swap failed"}.get(
        kind, f"{new} did not become healthy")
    brain_text = f"; {brain.text}" if brain is not None else ""
    if brain is None and kind is StepKind.SWAP_BRAIN:
        brain_text = "; the brain was not touched"
    if started.running:
        if brain is not None:
            where = (f"{why}, so {service} is running {old} again (degraded, as before the rollback){brain_text}; "
                     f"the compose file names {old}")
        else:
            where = f"{why}, so {service} is running {old} again (as before the rollback){brain_text}; the compose file names {old}"
        next_action = f"read why in `{compose}logs {service}` and the error above, fix it, then run `{retry}` again"
        return _Recovery(where, next_action, f"started {old} again")
    file_says = f"the compose file names {old}" if started.compose_put_back else f"the compose file names {new}"
    where = (f"{service} is stopped: {why}, and starting {old} again failed too ({started.problem}); "
             f"{file_says}{brain_text}")
    if started.compose_put_back:
        next_action = (f"read `{compose}logs {service}`, fix the cause, then start {old} with `{compose}up -d {service}`"
                       f" (or run `{retry}` again once {new} is fixed)")
    else:
        next_action = (f"put {plan.image_file or target.compose_file} back as it was before the run (the copy named above), "
                       f"then start {old} with `{compose}up -d {service}`")
    return _Recovery(where, next_action, f"starting {old} again failed: {started.problem}")


def describe_failure(plan: Plan, target: TargetConfig, kind: StepKind, undone: bool) -> tuple[str, str]:
    """Where a failed run left the service, and the next thing a person should do."""
    service, old, new = target.service, plan.running_version, plan.request.version
    compose = compose_command(target.compose_file, target.compose_files)
    retry = f"rollbot rollback {target.name} {new}"
    if kind in BEFORE_STOP:
        if undone:
            where = f"nothing was changed: {service} still runs {old} and the compose file names {old}"
            return where, f"fix the cause above, then run `{retry}` again"
        where = f"{service} still runs {old}, but the compose file may name {new}"
        return where, f"check the image line of {plan.image_file or target.compose_file}, fix the cause above, then run `{retry}` again"
    if kind is StepKind.STOP:
        where = f"the compose file names {new}; the drain-stop of {service} failed, so {old} may still be running"
        return where, f"check `{compose}ps {service}`, then `{compose}up -d {service}` to finish on {new}"
    if kind is StepKind.SWAP_BRAIN:
        where = f"the compose file names {new} and {service} is stopped: the brain swap failed"
        return where, f"check the brain folder, then run `{compose}up -d {service}` or `{retry}` again"
    if kind is StepKind.START:
        where = f"the compose file names {new} and {service} is stopped: it did not start"
        return where, f"read `{compose}logs {service}`, fix it and run `{compose}up -d {service}`"
    where = f"{service} is now on {new} but unhealthy"
    return where, (
        f"read `{compose}logs {service}`; if {new} is not the way out, roll to another version "
        f"with `rollbot rollback {target.name} VERSION`"
    )


def _safe(sink: ProgressSink | None) -> ProgressSink:
    """Progress display must never fail a rollback: its errors are logged and dropped."""

    def notify(event: EventView) -> None:
        if sink is None:
            return
        try:
            sink(event)
        except Exception:  # noqa: BLE001
            log.exception("progress sink failed on event %s", event.kind)

    return notify
