"""Liveness of runs in the journal: heartbeats, and runs whose process is gone marked interrupted.

Liveness is judged with the database's clock, never a replica's own: two replicas whose clocks
disagree still agree on whether a run is alive. Exactly one replica reports each interruption.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.database import rows_changed
from storage.models import RunRow
from storage.runstate import EventKind, IllegalMove, Lease, LostRun, Move, target_of
from storage.transitions import JournalTransitions, db_now
from storage.views import EventView, RunStatus, RunView


class JournalHeartbeats(JournalTransitions):
    """Heartbeats of the runs in flight, and the interruption of those that stopped beating."""

    def heartbeat(self, run_id: str, owner: Lease | str) -> bool:
        """Say that the lease holder still works on the run, stamped with the database's clock;
        False when it no longer holds it."""
        with self._sessions.begin() as session:
            try:
                self._move(session, run_id, Move.ACT, owner, heartbeat_at=db_now(session))
            except (LostRun, IllegalMove):
                return False
        return True

    def hold(self, run_id: str, lease: Lease) -> EventView | None:
        """`LostRun` unless `lease` still holds the run: asked before a side effect outside a step
        (an undo, a put-back); it also counts as a heartbeat."""
        with self._sessions.begin() as session:
            self._move(session, run_id, Move.ACT, lease, heartbeat_at=db_now(session))
        return None

    def mark_interrupted(
        self, owner_alive: Callable[[str], bool], actor: str, stale_after: timedelta | None = None
    ) -> list[RunView]:
        """Runs left `running` by a process that no longer exists become `interrupted`.

        A process is gone when its host says so (`owner_alive`) or, with `stale_after`, when its
        heartbeat is older than that by the database's clock (the heartbeat is stamped with it
        too): the only sign that works across hosts, pid reuse and replicas whose clocks differ.
        The move names the epoch and the heartbeat it judged, so a beat that lands meanwhile
        keeps the run alive. The run keeps the step it was in as `current_step`, and that step
        stays `running` in the steps table: what a person needs to see to decide what to do.
        """
        interrupted = []
        with self._sessions.begin() as session:
            now = db_now(session)
            running = session.scalars(select(RunRow).where(RunRow.status == RunStatus.RUNNING)).all()
            for run in running:
                beat = run.heartbeat_at or run.started_at
                stale = stale_after is not None and beat is not None and now - beat > stale_after
                if run.owner and owner_alive(run.owner) and not stale:
                    continue
                if not self._interrupt(session, run, actor, stale):
                    continue  # another replica marked it first, a beat came, or someone took it up
                interrupted.append(run.id)
        return [self.run(run_id) for run_id in interrupted]

    def _interrupt(self, session: Session, run: RunRow, actor: str, stale: bool) -> bool:
        beat = RunRow.heartbeat_at.is_(None) if run.heartbeat_at is None else RunRow.heartbeat_at == run.heartbeat_at
        claimed = rows_changed(
            session.execute(
                update(RunRow)
                .where(
                    RunRow.id == run.id,
                    RunRow.status == RunStatus.RUNNING,
                    RunRow.epoch == run.epoch,
                    RunRow.owner == run.owner if run.owner is not None else RunRow.owner.is_(None),
                    beat,
                )
                .values(
                    status=target_of(Move.INTERRUPT, RunStatus.RUNNING),
                    epoch=RunRow.epoch + 1,
                    finished_at=self._now(),
                    error=f"rollbot stopped during step '{run.current_step or 'start'}'",
                    next_action="Check the service's state (container image, health) before acting; "
                    "the journal shows which steps finished. Resume or abort the run.",
                )
                .execution_options(synchronize_session=False)
            )
        )
        if claimed == 1:
            self._event(
                session,
                run.id,
                actor,
                EventKind.RUN_INTERRUPTED,
                RunStatus.INTERRUPTED,
                {"step": run.current_step, "owner": run.owner, **({"heartbeat": "stale"} if stale else {})},
            )
        return claimed == 1

    def unreported_interruptions(self) -> list[RunView]:
        """Interrupted runs nobody has told the channel about yet."""
        with self._sessions() as session:
            query = select(RunRow).where(RunRow.status == RunStatus.INTERRUPTED, RunRow.reported_at.is_(None))
            return [self._view(session, row) for row in session.scalars(query.order_by(RunRow.created_at))]

    def claim_report(self, run_id: str) -> bool:
        """True for exactly one caller per interruption: the one that reports it."""
        with self._sessions.begin() as session:
            return (
                rows_changed(
                    session.execute(
                        update(RunRow)
                        .where(
                            RunRow.id == run_id, RunRow.status == RunStatus.INTERRUPTED, RunRow.reported_at.is_(None)
                        )
                        .values(reported_at=self._now())
                    )
                )
                == 1
            )
