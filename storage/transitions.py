"""How the journal writes: every change of a run is one transition, and every fact one event.

Every change of a run goes through `JournalTransitions._move`: one conditional UPDATE allowed by
the table in storage/runstate.py, fenced by the runner's `Lease` when it has one. A state change
updates the run or step row *and* appends an event in one transaction, so the rows and the event
log never disagree. Time that decides liveness is the database's (`db_now`), never a replica's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from storage.database import rows_changed
from storage.models import EventRow, RunRow, StepRow
from storage.run_reads import JournalReads
from storage.runstate import TAKE_OVERS, EventKind, IllegalMove, Lease, LostRun, Move, sources, target_of
from storage.views import EventView

Fence = Lease | str | None  # a runner's lease; an owner alone (older callers) fences on the owner only


class JournalTransitions(JournalReads):
    """The one transition function and the event log every write of the journal goes through."""

    def _move(self, session: Session, run_id: str, move: Move, fence: Fence, **values: Any) -> None:
        """The one transition function: perform `move` as one conditional UPDATE whose WHERE
        names the statuses the table allows it from and, with a lease, its owner and epoch, so
        the database itself refuses an illegal or stale move. Raises `LostRun` (stale lease)
        or `IllegalMove` (the table forbids it); the caller's transaction then writes nothing."""
        allowed = sources(move)
        where = [RunRow.id == run_id, RunRow.status.in_(allowed)]
        if isinstance(fence, Lease):
            where += [RunRow.owner == fence.owner, RunRow.epoch == fence.epoch]
        elif fence is not None:
            where.append(RunRow.owner == fence)
        if move in TAKE_OVERS:
            values["epoch"] = RunRow.epoch + 1
        values["status"] = target_of(move, allowed[0])
        moved = rows_changed(
            session.execute(update(RunRow).where(*where).values(**values).execution_options(synchronize_session=False))
        )
        if moved != 1:
            raise self._refusal(session, run_id, move, fence)
        session.expire_all()

    @staticmethod
    def _refusal(session: Session, run_id: str, move: Move, fence: Fence) -> Exception:
        row = session.execute(select(RunRow.status, RunRow.owner, RunRow.epoch).where(RunRow.id == run_id)).first()
        if row is None:
            return IllegalMove(f"run {run_id} does not exist")
        status, owner, epoch = row
        if fence is not None:
            holder = fence if isinstance(fence, str) else f"{fence.owner} (epoch {fence.epoch})"
            return LostRun(f"run {run_id} is {status} and held by {owner} (epoch {epoch}), not {holder}")
        if move is Move.RECLAIM:
            return IllegalMove(f"run {run_id} is {status}, not interrupted")
        return IllegalMove(f"run {run_id} is {status}")

    def _step(self, session: Session, run_id: str, position: int) -> StepRow:
        return session.scalars(select(StepRow).where(StepRow.run_id == run_id, StepRow.position == position)).one()

    def _event(
        self,
        session: Session,
        run_id: str | None,
        actor: str,
        kind: EventKind,
        outcome: str | None,
        details: dict[str, Any],
    ) -> EventView:
        row = EventRow(run_id=run_id, at=self._now(), actor=actor, kind=kind, outcome=outcome, details=details)
        session.add(row)
        session.flush()
        return EventView(row.id, row.run_id, row.at, row.actor, row.kind, row.outcome, dict(row.details))


def db_now(session: Session) -> datetime:
    """Now by the database's clock (UTC): what heartbeats are stamped and judged with, so a
    replica's own clock, however far off, never decides whether a run is alive."""
    if session.get_bind().dialect.name == "postgresql":
        value: datetime = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return value.astimezone(UTC)
    stamp: str = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def lock_run(session: Session, run_id: str) -> None:
    """Write-lock one run until the transaction ends, on both backends: an UPDATE that changes
    nothing locks the row on PostgreSQL and the database on SQLite, which has no
    SELECT … FOR UPDATE. The reads after it see what others committed before it."""
    session.execute(update(RunRow).where(RunRow.id == run_id).values(context=RunRow.context))
