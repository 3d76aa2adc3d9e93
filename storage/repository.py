"""The journal the core writes and every view reads: runs, steps and events.

Each state change is one transaction that updates the run or step row *and* appends an event, so
the rows and the event log never disagree. Readers get frozen views, never ORM objects, so no
session outlives a call.

Every change of a run goes through `Journal._move`: one conditional UPDATE allowed by the table
in storage/runstate.py, fenced by the runner's `Lease` when it has one. Liveness (heartbeats and
their staleness) is judged with the database's clock, never a replica's own: two replicas whose
clocks disagree still agree on whether a run is alive.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import JournalError
from storage.models import EventRow, RunRow, StepRow
from storage.runstate import (
    FINISHING,
    TAKE_OVERS,
    EventKind,
    IllegalMove,
    Lease,
    LostRun,
    Move,
    sources,
    target_of,
)
from storage.schemas import SchemaSighting, SchemaSightings
from storage.views import EventView, NewRun, RunStatus, RunView, StepStatus, StepView

__all__ = ["Journal", "NotStartable", "LostRun", "IllegalMove", "Lease", "NewRun", "RunStatus", "StepStatus",
           "RunView", "StepView", "EventView"]

Clock = Callable[[], datetime]
Fence = Lease | str | None  # a runner's lease; an owner alone (older callers) fences on the owner only


class NotStartable(IllegalMove):
    """A run could not be claimed: it is no longer planned or interrupted, or its target is held
    by another run (running, or interrupted and waiting for its resume or abort)."""


class Journal:
    """The repository of runs. Thread-safe: every call opens and closes its own session."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._now = clock or (lambda: datetime.now(UTC))
        self._sightings = SchemaSightings(engine, clock)

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
        return self._claim(run_id, Move.START, actor, owner, EventKind.RUN_STARTED, {"approver": approver},
                           started_at=self._now(), approver=approver)

    def reclaim(self, run_id: str, actor: str, owner: str, kind: EventKind, details: dict[str, Any]) -> EventView:
        """Take an interrupted run back into `running` to resume or abort it: as `start`, one
        conditional UPDATE, so of two clicks or two replicas exactly one wins, and a new epoch
        that voids the lease of whoever ran it before."""
        return self._claim(run_id, Move.RECLAIM, actor, owner, kind, details,
                           reported_at=None, finished_at=None, error=None, next_action=None)

    def _claim(self, run_id: str, move: Move, actor: str, owner: str, kind: EventKind, details: dict[str, Any],
               **values: Any) -> EventView:
        try:
            with self._sessions.begin() as session:
                self._move(session, run_id, move, None, owner=owner, heartbeat_at=_db_now(session), **values)
                lease = Lease(owner, session.scalars(select(RunRow.epoch).where(RunRow.id == run_id)).one())
                return self._event(session, run_id, actor, kind, None, {**lease.as_details(), **details})
        except IntegrityError:
            held = self._holder(run_id)
            raise NotStartable(f"another run of this target is in progress: {held}; run {run_id} was not "
                               f"{'started' if move is Move.START else 'taken up'}") from None
        except NotStartable:
            raise
        except IllegalMove as refused:
            raise NotStartable(str(refused)) from None

    def _holder(self, run_id: str) -> str:
        """The run that holds `run_id`'s target (running or interrupted), named in a refusal."""
        with self._sessions() as session:
            target = session.scalars(select(RunRow.target).where(RunRow.id == run_id)).one()
            holders = session.scalars(select(RunRow).where(
                RunRow.target == target, RunRow.id != run_id, RunRow.kind == "rollback",
                RunRow.status.in_([RunStatus.RUNNING, RunStatus.INTERRUPTED])))
            named = [f"{row.id} ({row.status})" for row in holders]
        return ", ".join(named) or "another run"

    def set_context(self, run_id: str, **context: Any) -> None:
        """Front-end facts about a run (e.g. where its messages are), merged into `context`.

        A read, merge and write: two at once (the plan message remembered on one replica, the
        announcement on another) would each write back what they read and lose the other's
        fact, so the run's row is locked first."""
        with self._sessions.begin() as session:
            _lock_run(session, run_id)
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
            return self._event(session, run_id, actor, EventKind.STEP_STARTED, None,
                               {"step": step.name, "position": position})

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
            self._move(session, run_id, FINISHING[status], owner, finished_at=self._now(), error=error,
                       next_action=next_action, summary=summary)
            details = {"error": error, "next_action": next_action, **summary}
            return self._event(session, run_id, actor, EventKind.RUN_FINISHED, status, details)

    def note(self, run_id: str | None, actor: str, kind: EventKind, details: dict[str, Any], owner: Fence = None) -> EventView:
        """Append a fact to the journal that is not a step boundary (e.g. what a swap is about to
        do). With a runner's lease it is written only while the runner holds the run."""
        with self._sessions.begin() as session:
            if owner is not None and run_id is not None:
                self._move(session, run_id, Move.ACT, owner)
            return self._event(session, run_id, actor, kind, None, details)

    def saw_schema(self, target: str, version: str, schema: int, source: str) -> None:
        """`version` of `target` answered healthy while its brain was at `schema` (see storage/schemas.py)."""
        self._sightings.saw(target, version, schema, source)

    def schema_seen(self, target: str, version: str) -> SchemaSighting | None:
        """The highest brain schema rollbot saw `version` of `target` healthy on, if it ever did."""
        return self._sightings.newest_schema(target, version)

    def heartbeat(self, run_id: str, owner: Lease | str) -> bool:
        """Say that the lease holder still works on the run, stamped with the database's clock;
        False when it no longer holds it."""
        with self._sessions.begin() as session:
            try:
                self._move(session, run_id, Move.ACT, owner, heartbeat_at=_db_now(session))
            except (LostRun, IllegalMove):
                return False
        return True

    def hold(self, run_id: str, lease: Lease) -> EventView | None:
        """`LostRun` unless `lease` still holds the run: asked before a side effect outside a step
        (an undo, a put-back); it also counts as a heartbeat."""
        with self._sessions.begin() as session:
            self._move(session, run_id, Move.ACT, lease, heartbeat_at=_db_now(session))
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
            now = _db_now(session)
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
        claimed = session.execute(
            update(RunRow)
            .where(RunRow.id == run.id, RunRow.status == RunStatus.RUNNING, RunRow.epoch == run.epoch,
                   RunRow.owner == run.owner if run.owner is not None else RunRow.owner.is_(None), beat)
            .values(
                status=target_of(Move.INTERRUPT, RunStatus.RUNNING),
                epoch=RunRow.epoch + 1,
                finished_at=self._now(),
                error=f"rollbot stopped during step '{run.current_step or 'start'}'",
                next_action="Check the service's state (container image, health) before acting; "
                            "the journal shows which steps finished. Resume or abort the run.",
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed == 1:
            self._event(
                session, run.id, actor, EventKind.RUN_INTERRUPTED, RunStatus.INTERRUPTED,
                {"step": run.current_step, "owner": run.owner, **({"heartbeat": "stale"} if stale else {})},
            )
        return claimed == 1

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
        moved = session.execute(
            update(RunRow).where(*where).values(**values).execution_options(synchronize_session=False)
        ).rowcount
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
        kind: EventKind,
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


def _db_now(session: Session) -> datetime:
    """Now by the database's clock (UTC): what heartbeats are stamped and judged with, so a
    replica's own clock, however far off, never decides whether a run is alive."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return value.astimezone(UTC)
    stamp = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def _lock_run(session: Session, run_id: str) -> None:
    """Write-lock one run until the transaction ends, on both backends: an UPDATE that changes
    nothing locks the row on PostgreSQL and the database on SQLite, which has no
    SELECT … FOR UPDATE. The reads after it see what others committed before it."""
    session.execute(update(RunRow).where(RunRow.id == run_id).values(context=RunRow.context))


def _new_run_id(now: datetime) -> str:
    """Sortable and short enough to type: `20261126-031914-a3f9c2`; 24 random bits per second."""
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"

