"""The journal the core writes and every view reads: runs, steps and events.

`Journal` is the one repository: its reads are in storage/run_reads.py, the transition function
and event log every write goes through in storage/transitions.py, heartbeats and interruptions in
storage/heartbeats.py; here are the writes of a run's life, from its plan to its end.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage.health_probes import HealthRecord
from storage.known_bad import JournalKnownBad
from storage.models import RunRow, StepRow
from storage.runstate import FINISHING, RUNNER_KINDS, EventKind, IllegalMove, Lease, LostRun, Move, target_of
from storage.schemas import SchemaSighting
from storage.transitions import Fence, db_now, lock_run
from storage.views import EventView, NewRun, RunStatus, RunView, StepStatus, StepView

__all__ = [
    "EventView",
    "IllegalMove",
    "Journal",
    "Lease",
    "LostRun",
    "NewRun",
    "NotStartable",
    "RunStatus",
    "RunView",
    "StepStatus",
    "StepView",
]


class NotStartable(IllegalMove):
    """A run could not be claimed: it is no longer planned or interrupted, or its target is held
    by another run (running, or interrupted and waiting for its resume or abort)."""


class Journal(JournalKnownBad):
    """The repository of runs. Thread-safe: every call opens and closes its own session."""

    def record_plan(self, new: NewRun, actor: str, refusal: str | None = None) -> RunView:
        """Store a plan as a run: `planned`, or `refused` with the reason when preflight failed."""
        now = self._now()
        status = target_of(Move.REFUSE if refusal else Move.PLAN, None)
        run = RunRow(
            id=_new_run_id(now),
            kind=new.kind,
            target=new.target,
            environment=new.environment,
            from_version=new.from_version,
            to_version=new.to_version,
            reason=new.reason,
            requester=new.requester,
            status=status,
            created_at=now,
            finished_at=now if refusal else None,
            error=refusal,
            plan=new.plan,
            summary={},
            context={},
            epoch=0,
        )
        with self._sessions.begin() as session:
            session.add(run)
            session.flush()
            for position, (name, description) in enumerate(new.steps):
                session.add(
                    StepRow(
                        run_id=run.id,
                        position=position,
                        name=name,
                        description=description,
                        status=StepStatus.PENDING,
                        detail={},
                    )
                )
            kind = EventKind.RUN_REFUSED if refusal else EventKind.RUN_PLANNED
            self._event(session, run.id, actor, kind, None, {"refusal": refusal} if refusal else {})
        return self.run(run.id)

    def cancel(self, run_id: str, actor: str, why: str) -> bool:
        """Close a plan that has not started; False (and nothing written) when it already has."""
        with self._sessions.begin() as session:
            try:
                self._move(session, run_id, Move.CANCEL, None, finished_at=self._now(), error=why)
            except IllegalMove:
                return False
            self._event(session, run_id, actor, EventKind.RUN_FINISHED, RunStatus.CANCELLED, {"error": why})
        return True

    def start(self, run_id: str, actor: str, owner: str, approver: str | None = None) -> EventView:
        """Claim a planned run for execution: one conditional UPDATE, so of two clicks, two
        threads or two replicas exactly one wins; the database's partial unique index refuses
        a run of a target another run holds. Raises `NotStartable` with the reason. The event's
        details carry the lease (`Lease.of(event.details)`) every later write must name."""
        return self._claim(
            run_id,
            Move.START,
            actor,
            owner,
            EventKind.RUN_STARTED,
            {"approver": approver},
            started_at=self._now(),
            approver=approver,
        )

    def reclaim(self, run_id: str, actor: str, owner: str, kind: EventKind, details: dict[str, Any]) -> EventView:
        """Take an interrupted run back into `running` to resume or abort it: as `start`, one
        conditional UPDATE, so of two clicks or two replicas exactly one wins, and a new epoch
        that voids the lease of whoever ran it before."""
        return self._claim(
            run_id,
            Move.RECLAIM,
            actor,
            owner,
            kind,
            details,
            reported_at=None,
            finished_at=None,
            error=None,
            next_action=None,
        )

    def _claim(
        self, run_id: str, move: Move, actor: str, owner: str, kind: EventKind, details: dict[str, Any], **values: Any
    ) -> EventView:
        try:
            with self._sessions.begin() as session:
                self._move(session, run_id, move, None, owner=owner, heartbeat_at=db_now(session), **values)
                lease = Lease(owner, session.scalars(select(RunRow.epoch).where(RunRow.id == run_id)).one())
                return self._event(session, run_id, actor, kind, None, {**lease.as_details(), **details})
        except IntegrityError:
            held = self._holder(run_id)
            raise NotStartable(
                f"another run of this target is in progress: {held}; run {run_id} was not "
                f"{'started' if move is Move.START else 'taken up'}"
            ) from None
        except NotStartable:
            raise
        except IllegalMove as refused:
            raise NotStartable(str(refused)) from None

    def _holder(self, run_id: str) -> str:
        """The run that holds `run_id`'s target (running or interrupted), named in a refusal."""
        with self._sessions() as session:
            target = session.scalars(select(RunRow.target).where(RunRow.id == run_id)).one()
            holders = session.scalars(
                select(RunRow).where(
                    RunRow.target == target,
                    RunRow.id != run_id,
                    RunRow.kind.in_(RUNNER_KINDS),
                    RunRow.status.in_([RunStatus.RUNNING, RunStatus.INTERRUPTED]),
                )
            )
            named = [f"{row.id} ({row.status})" for row in holders]
        return ", ".join(named) or "another run"

    def set_context(self, run_id: str, **context: Any) -> None:
        """Front-end facts about a run (e.g. where its messages are), merged into `context`.

        A read, merge and write: two at once (the plan message remembered on one replica, the
        announcement on another) would each write back what they read and lose the other's
        fact, so the run's row is locked first."""
        with self._sessions.begin() as session:
            lock_run(session, run_id)
            run = session.get_one(RunRow, run_id)
            run.context = {**(run.context or {}), **context}

    def step_started(self, run_id: str, position: int, actor: str, owner: Fence = None) -> EventView:
        """Journal a step's start. With the runner's lease (`owner`), only while it still holds
        the run: a runner that lost its run learns it here (`LostRun`), before the step acts."""
        with self._sessions.begin() as session:
            step = self._step(session, run_id, position)
            self._move(session, run_id, Move.ACT, owner, current_step=step.name)
            step.status = StepStatus.RUNNING
            step.started_at = self._now()
            return self._event(
                session, run_id, actor, EventKind.STEP_STARTED, None, {"step": step.name, "position": position}
            )

    def step_finished(
        self,
        run_id: str,
        position: int,
        actor: str,
        status: StepStatus,
        detail: dict[str, Any] | None = None,
        error: str | None = None,
        owner: Fence = None,
        left: dict[str, Any] | None = None,
    ) -> EventView:
        """Journal a step's end (fenced like `step_started`). `left`, when given, is what the
        step left behind (files' hashes and inodes), journaled in the event's `left` so a later
        resume or abort can tell whether anyone changed them since."""
        with self._sessions.begin() as session:
            self._move(session, run_id, Move.ACT, owner)
            step = self._step(session, run_id, position)
            step.status = status
            step.finished_at = self._now()
            if step.started_at is None:
                step.started_at = step.finished_at
            step.detail = detail or {}
            step.error = error
            details = {"step": step.name, "position": position, **(detail or {})}
            if error:
                details["error"] = error
            if left is not None:
                details["left"] = left
            return self._event(session, run_id, actor, EventKind.STEP_FINISHED, status, details)

    def finish(
        self,
        run_id: str,
        actor: str,
        status: RunStatus,
        error: str | None = None,
        next_action: str | None = None,
        summary: dict[str, Any] | None = None,
        owner: Fence = None,
    ) -> EventView:
        """End a running run (fenced by the runner's lease when given): succeeded, failed,
        aborted, or interrupted at a shutdown. `LostRun` when the lease is void, `IllegalMove`
        when the run is not running."""
        summary = summary or {}
        if status not in FINISHING:
            raise IllegalMove(f"a run is not finished as {status}")
        with self._sessions.begin() as session:
            self._move(
                session,
                run_id,
                FINISHING[status],
                owner,
                finished_at=self._now(),
                error=error,
                next_action=next_action,
                summary=summary,
            )
            details = {"error": error, "next_action": next_action, **summary}
            return self._event(session, run_id, actor, EventKind.RUN_FINISHED, status, details)

    def note(
        self, run_id: str | None, actor: str, kind: EventKind, details: dict[str, Any], owner: Fence = None
    ) -> EventView:
        """Append a fact to the journal that is not a step boundary (e.g. what a swap is about to
        do). With a runner's lease it is written only while the runner holds the run."""
        with self._sessions.begin() as session:
            if owner is not None and run_id is not None:
                self._move(session, run_id, Move.ACT, owner)
            return self._event(session, run_id, actor, kind, None, details)

    def saw_schema(self, target: str, version: str, schema: int, source: str) -> None:
        """`version` of `target` answered healthy while its brain was at `schema` (see storage/schemas.py)."""
        self._sightings.saw(target, version, schema, source)

    def versions_seen_healthy(self, target: str) -> list[SchemaSighting]:
        """The versions of `target` rollbot saw healthy, the most recently seen first."""
        return self._sightings.healthy_versions(target)

    def schema_seen(self, target: str, version: str) -> SchemaSighting | None:
        """The highest brain schema rollbot saw `version` of `target` healthy on, if it ever did."""
        return self._sightings.newest_schema(target, version)

    def probed(self, target: str, ok: bool, answer: str, source: str, at: datetime, began: datetime) -> None:
        """rollbot probed `target`'s /health from `began` to `at` (see storage/health_probes.py)."""
        self._probes.probed(target, ok, answer, source, at, began)

    def health_record(self, target: str) -> HealthRecord | None:
        """What rollbot's own probes saw of `target`: the last one, and since when its state holds."""
        return self._probes.record(target)


def _new_run_id(now: datetime) -> str:
    """Sortable and short enough to type: `20261126-031914-a3f9c2`; 24 random bits per second."""
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
