"""The journal the core writes and every view reads: runs, steps and events.

Each state change is one transaction that updates the run or step row *and* appends an event, so
the rows and the event log never disagree. Readers get frozen views, never ORM objects, so no
session outlives a call.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import JournalError
from storage.models import EventRow, RunRow, StepRow
from storage.schemas import SchemaSighting, SchemaSightings
from storage.views import EventView, NewRun, RunStatus, RunView, StepStatus, StepView

__all__ = ["Journal", "NotStartable", "LostRun", "NewRun", "RunStatus", "StepStatus", "RunView", "StepView",
           "EventView"]

Clock = Callable[[], datetime]


class NotStartable(JournalError, ValueError):
    """A run could not be claimed: it is no longer planned, or its target is busy."""


class LostRun(JournalError, RuntimeError):
    """This process no longer owns the run (another process took it over after a missed
    heartbeat): it must stop before touching anything else."""


class Journal:
    """The repository of runs. Thread-safe: every call opens and closes its own session."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._now = clock or (lambda: datetime.now(UTC))
        self._sightings = SchemaSightings(engine, clock)

    def record_plan(self, new: NewRun, actor: str, refusal: str | None = None) -> RunView:
        """Store a plan as a run: `planned`, or `refused` with the reason when preflight failed."""
        now = self._now()
        status = RunStatus.REFUSED if refusal else RunStatus.PLANNED
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
            self._event(session, run.id, actor, f"run.{status}", None, {"refusal": refusal} if refusal else {})
        return self.run(run.id)

    def cancel(self, run_id: str, actor: str, why: str) -> bool:
        """Close a plan that has not started; False (and nothing written) when it already has."""
        with self._sessions.begin() as session:
            closed = session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == RunStatus.PLANNED)
                .values(status=RunStatus.CANCELLED, finished_at=self._now(), error=why)
            ).rowcount
            if closed == 1:
                self._event(session, run_id, actor, "run.finished", RunStatus.CANCELLED, {"error": why})
        return closed == 1

    def start(self, run_id: str, actor: str, owner: str, approver: str | None = None) -> EventView:
        """Claim a planned run for execution: one conditional UPDATE, so of two clicks, two
        threads or two replicas exactly one wins; the database's partial unique index refuses
        a second running run of the same target. Raises `NotStartable` with the reason."""
        try:
            with self._sessions.begin() as session:
                claimed = session.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.status == RunStatus.PLANNED)
                    .values(status=RunStatus.RUNNING, started_at=self._now(), heartbeat_at=self._now(),
                            owner=owner, approver=approver)
                ).rowcount
                if claimed == 1:
                    return self._event(session, run_id, actor, "run.started", None, {"owner": owner, "approver": approver})
                run = session.get(RunRow, run_id)
                state = f"is {run.status}" if run else "does not exist"
        except IntegrityError:
            raise NotStartable(f"another run of this target is in progress; run {run_id} was not started") from None
        raise NotStartable(f"run {run_id} {state}")

    def set_context(self, run_id: str, **context: Any) -> None:
        """Front-end facts about a run (e.g. where its messages are), merged into `context`.

        A read, merge and write: two at once (the plan message remembered on one replica, the
        announcement on another) would each write back what they read and lose the other's
        fact, so the run's row is locked first."""
        with self._sessions.begin() as session:
            _lock_run(session, run_id)
            run = session.get_one(RunRow, run_id)
            run.context = {**(run.context or {}), **context}

    def step_started(self, run_id: str, position: int, actor: str, owner: str | None = None) -> EventView:
        """Journal a step's start. With `owner`, only while that process still owns the run: a
        runner that lost its run (see `LostRun`) learns it here, before the step acts."""
        with self._sessions.begin() as session:
            if owner is not None:
                run = session.get_one(RunRow, run_id)
                if run.owner != owner or run.status != RunStatus.RUNNING:
                    raise LostRun(f"run {run_id} is {run.status} and owned by {run.owner}, not {owner}")
            step = self._step(session, run_id, position)
            step.status = StepStatus.RUNNING
            step.started_at = self._now()
            session.get_one(RunRow, run_id).current_step = step.name
            return self._event(session, run_id, actor, "step.started", None, {"step": step.name, "position": position})

    def step_finished(
        self,
        run_id: str,
        position: int,
        actor: str,
        status: StepStatus,
        detail: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> EventView:
        with self._sessions.begin() as session:
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
            return self._event(session, run_id, actor, "step.finished", status, details)

    def finish(
        self,
        run_id: str,
        actor: str,
        status: RunStatus,
        error: str | None = None,
        next_action: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> EventView:
        summary = summary or {}
        with self._sessions.begin() as session:
            run = session.get_one(RunRow, run_id)
            run.status = status
            run.finished_at = self._now()
            run.error = error
            run.next_action = next_action
            run.summary = summary
            details = {"error": error, "next_action": next_action, **summary}
            return self._event(session, run_id, actor, "run.finished", status, details)

    def note(self, run_id: str | None, actor: str, kind: str, details: dict[str, Any]) -> EventView:
        """Append a fact to the journal that is not a step boundary (e.g. what a swap is about to do)."""
        with self._sessions.begin() as session:
            return self._event(session, run_id, actor, kind, None, details)

    def saw_schema(self, target: str, version: str, schema: int, source: str) -> None:
        """`version` of `target` answered healthy while its brain was at `schema` (see storage/schemas.py)."""
        self._sightings.saw(target, version, schema, source)

    def schema_seen(self, target: str, version: str) -> SchemaSighting | None:
        """The highest brain schema rollbot saw `version` of `target` healthy on, if it ever did."""
        return self._sightings.newest_schema(target, version)

    def heartbeat(self, run_id: str, owner: str) -> bool:
        """Say that `owner` still works on the run; False when it no longer owns it."""
        with self._sessions.begin() as session:
            return session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.owner == owner, RunRow.status == RunStatus.RUNNING)
                .values(heartbeat_at=self._now())
            ).rowcount == 1

    def mark_interrupted(
        self, owner_alive: Callable[[str], bool], actor: str, stale_after: timedelta | None = None
    ) -> list[RunView]:
        """Runs left `running` by a process that no longer exists become `interrupted`.

        A process is gone when its host says so (`owner_alive`) or, with `stale_after`, when its
        heartbeat is older than that: the only sign that works across hosts and pid reuse.
        The run keeps the step it was in as `current_step`, and that step stays `running` in
        the steps table: that is exactly what a person needs to see to decide what to do next.
        """
        interrupted = []
        now = self._now()
        with self._sessions.begin() as session:
            running = session.scalars(select(RunRow).where(RunRow.status == RunStatus.RUNNING))
            for run in running:
                beat = run.heartbeat_at or run.started_at
                stale = stale_after is not None and beat is not None and now - beat > stale_after
                if run.owner and owner_alive(run.owner) and not stale:
                    continue
                claimed = session.execute(
                    update(RunRow)
                    .where(RunRow.id == run.id, RunRow.status == RunStatus.RUNNING, RunRow.owner == run.owner)
                    .values(
                        status=RunStatus.INTERRUPTED,
                        finished_at=now,
                        error=f"rollbot stopped during step '{run.current_step or 'start'}'",
                        next_action="Check the service's state (container image, health) before acting; "
                                    "the journal shows which steps finished. Resume or abort the run.",
                    )
                    .execution_options(synchronize_session=False)
                ).rowcount
                if claimed != 1:
                    continue  # another replica marked it first, or someone took it up meanwhile
                self._event(
                    session, run.id, actor, "run.interrupted", RunStatus.INTERRUPTED,
                    {"step": run.current_step, "owner": run.owner, **({"heartbeat": "stale"} if stale else {})},
                )
                interrupted.append(run.id)
        return [self.run(run_id) for run_id in interrupted]

    def reclaim(self, run_id: str, actor: str, owner: str, kind: str, details: dict[str, Any]) -> EventView:
        """Take an interrupted run back into `running` to resume or abort it: as `start`, one
        conditional UPDATE, so of two clicks or two replicas exactly one wins."""
        try:
            with self._sessions.begin() as session:
                claimed = session.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.status == RunStatus.INTERRUPTED)
                    .values(status=RunStatus.RUNNING, owner=owner, heartbeat_at=self._now(), reported_at=None,
                            finished_at=None, error=None, next_action=None)
                ).rowcount
                if claimed == 1:
                    return self._event(session, run_id, actor, kind, None, {"owner": owner, **details})
                run = session.get(RunRow, run_id)
                state = f"is {run.status}, not interrupted" if run else "does not exist"
        except IntegrityError:
            raise NotStartable(f"another run of this target is in progress; run {run_id} was not taken up") from None
        raise NotStartable(f"run {run_id} {state}")

    def unreported_interruptions(self) -> list[RunView]:
        """Interrupted runs nobody has told the channel about yet."""
        with self._sessions() as session:
            query = select(RunRow).where(RunRow.status == RunStatus.INTERRUPTED, RunRow.reported_at.is_(None))
            return [self._view(session, row) for row in session.scalars(query.order_by(RunRow.created_at))]

    def claim_report(self, run_id: str) -> bool:
        """True for exactly one caller per interruption: the one that reports it."""
        with self._sessions.begin() as session:
            return session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == RunStatus.INTERRUPTED, RunRow.reported_at.is_(None))
                .values(reported_at=self._now())
            ).rowcount == 1

    def runs(
        self, target: str | None = None, limit: int = 20, status: RunStatus | None = None, kind: str | None = None
    ) -> list[RunView]:
        with self._sessions() as session:
            query = select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit)
            if target is not None:
                query = query.where(RunRow.target == target)
            if status is not None:
                query = query.where(RunRow.status == status)
            if kind is not None:
                query = query.where(RunRow.kind == kind)
            return [self._view(session, row) for row in session.scalars(query)]

    def run_counts(self) -> list[tuple[str, str, str, int]]:
        """(target, kind, status, runs) over the whole journal: what /metrics counts."""
        with self._sessions() as session:
            query = select(RunRow.target, RunRow.kind, RunRow.status, func.count()).group_by(
                RunRow.target, RunRow.kind, RunRow.status)
            return [(target, kind, status, count) for target, kind, status, count in session.execute(query)]

    def step_durations(self, last_runs: int = 500) -> list[tuple[str, str, str, float]]:
        """(target, step, status, seconds) of the finished steps of the newest runs."""
        with self._sessions() as session:
            newest = select(RunRow.id).where(RunRow.started_at.is_not(None)).order_by(
                RunRow.started_at.desc()).limit(last_runs).subquery()
            query = (select(RunRow.target, StepRow.name, StepRow.status, StepRow.started_at, StepRow.finished_at)
                     .join(StepRow, StepRow.run_id == RunRow.id)
                     .where(RunRow.id.in_(select(newest.c.id)), StepRow.finished_at.is_not(None),
                            StepRow.started_at.is_not(None)))
            return [(target, name, status, (finished - started).total_seconds())
                    for target, name, status, started, finished in session.execute(query)]

    def run(self, run_id: str) -> RunView:
        with self._sessions() as session:
            return self._view(session, session.get_one(RunRow, run_id), with_events=True)

    def _step(self, session: Session, run_id: str, position: int) -> StepRow:
        return session.scalars(
            select(StepRow).where(StepRow.run_id == run_id, StepRow.position == position)
        ).one()

    def _event(
        self,
        session: Session,
        run_id: str | None,
        actor: str,
        kind: str,
        outcome: str | None,
        details: dict[str, Any],
    ) -> EventView:
        row = EventRow(run_id=run_id, at=self._now(), actor=actor, kind=kind, outcome=outcome, details=details)
        session.add(row)
        session.flush()
        return EventView(row.id, row.run_id, row.at, row.actor, row.kind, row.outcome, dict(row.details))

    def _view(self, session: Session, row: RunRow, with_events: bool = False) -> RunView:
        steps = session.scalars(select(StepRow).where(StepRow.run_id == row.id).order_by(StepRow.position))
        events: tuple[EventView, ...] = ()
        if with_events:
            rows = session.scalars(select(EventRow).where(EventRow.run_id == row.id).order_by(EventRow.id))
            events = tuple(
                EventView(e.id, e.run_id, e.at, e.actor, e.kind, e.outcome, dict(e.details)) for e in rows
            )
        return RunView(
            id=row.id,
            kind=row.kind,
            target=row.target,
            environment=row.environment,
            from_version=row.from_version,
            to_version=row.to_version,
            reason=row.reason,
            requester=row.requester,
            status=RunStatus(row.status),
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            current_step=row.current_step,
            error=row.error,
            next_action=row.next_action,
            owner=row.owner,
            plan=dict(row.plan or {}),
            summary=dict(row.summary or {}),
            steps=tuple(
                StepView(
                    s.position, s.name, s.description, StepStatus(s.status), s.started_at,
                    s.finished_at, dict(s.detail or {}), s.error,
                )
                for s in steps
            ),
            events=events,
            approver=row.approver,
            context=dict(row.context or {}),
        )


def _lock_run(session: Session, run_id: str) -> None:
    """Write-lock one run until the transaction ends, on both backends: an UPDATE that changes
    nothing locks the row on PostgreSQL and the database on SQLite, which has no
    SELECT … FOR UPDATE. The reads after it see what others committed before it."""
    session.execute(update(RunRow).where(RunRow.id == run_id).values(context=RunRow.context))


def _new_run_id(now: datetime) -> str:
    """Sortable and short enough to type: `20261126-031914-a3f9c2`; 24 random bits per second."""
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"

