"""Reading the journal: frozen views of runs, their steps and events, and what /metrics counts.

Readers get views, never ORM objects, so no session outlives a call. The journal's writes
(storage/transitions.py and on) build on this: every write returns the view of what it wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.health_probes import HealthProbes
from storage.models import EventRow, RunRow, StepRow
from storage.schemas import SchemaSightings
from storage.views import EventView, RunStatus, RunView, StepStatus, StepView

Clock = Callable[[], datetime]


class JournalReads:
    """The reading side of the journal, and the sessions and clock all of it shares.
    Thread-safe: every call opens and closes its own session."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._now = clock or (lambda: datetime.now(UTC))
        self._sightings = SchemaSightings(engine, clock)
        self._probes = HealthProbes(engine)

    def runs(
        self,
        target: str | None = None,
        limit: int = 20,
        status: RunStatus | None = None,
        kind: str | Sequence[str] | None = None,
    ) -> list[RunView]:
        with self._sessions() as session:
            query = select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit)
            if target is not None:
                query = query.where(RunRow.target == target)
            if status is not None:
                query = query.where(RunRow.status == status)
            if kind is not None:
                query = query.where(RunRow.kind.in_([kind] if isinstance(kind, str) else list(kind)))
            return [self._view(session, row) for row in session.scalars(query)]

    def run_counts(self) -> list[tuple[str, str, str, int]]:
        """(target, kind, status, runs) over the whole journal: what /metrics counts."""
        with self._sessions() as session:
            query = select(RunRow.target, RunRow.kind, RunRow.status, func.count()).group_by(
                RunRow.target, RunRow.kind, RunRow.status
            )
            return [(target, kind, status, count) for target, kind, status, count in session.execute(query)]

    def step_durations(self, last_runs: int = 500) -> list[tuple[str, str, str, float]]:
        """(target, step, status, seconds) of the finished steps of the newest runs."""
        with self._sessions() as session:
            newest = (
                select(RunRow.id)
                .where(RunRow.started_at.is_not(None))
                .order_by(RunRow.started_at.desc())
                .limit(last_runs)
                .subquery()
            )
            query = (
                select(RunRow.target, StepRow.name, StepRow.status, StepRow.started_at, StepRow.finished_at)
                .join(StepRow, StepRow.run_id == RunRow.id)
                .where(
                    RunRow.id.in_(select(newest.c.id)),
                    StepRow.finished_at.is_not(None),
                    StepRow.started_at.is_not(None),
                )
            )
            return [
                (target, name, status, (finished - started).total_seconds())
                for target, name, status, started, finished in session.execute(query)
                if started is not None and finished is not None
            ]

    def run(self, run_id: str) -> RunView:
        with self._sessions() as session:
            return self._view(session, session.get_one(RunRow, run_id), with_events=True)

    def _view(self, session: Session, row: RunRow, with_events: bool = False) -> RunView:
        steps = session.scalars(select(StepRow).where(StepRow.run_id == row.id).order_by(StepRow.position))
        events: tuple[EventView, ...] = ()
        if with_events:
            rows = session.scalars(select(EventRow).where(EventRow.run_id == row.id).order_by(EventRow.id))
            events = tuple(EventView(e.id, e.run_id, e.at, e.actor, e.kind, e.outcome, dict(e.details)) for e in rows)
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
                    s.position,
                    s.name,
                    s.description,
                    StepStatus(s.status),
                    s.started_at,
                    s.finished_at,
                    dict(s.detail or {}),
                    s.error,
                )
                for s in steps
            ),
            events=events,
            approver=row.approver,
            context=dict(row.context or {}),
        )
