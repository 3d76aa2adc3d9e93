"""The persisted ticket outbox: a run's postmortem is owed until a sink confirms it exists.

Attempts are claimed with a lease (a conditional update of `next_attempt_at`), so two workers
or two replicas never try the same ticket at once, and a worker that dies mid-attempt only
delays the ticket by the lease.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from storage.database import rows_changed
from storage.models import TicketRow

LEASE = timedelta(minutes=2)
# INSERT … ON CONFLICT DO NOTHING, which both backends have and SQLAlchemy spells per dialect.
# Both dialects' INSERT can skip a row that exists; the generic one cannot.
_INSERT_IF_ABSENT: dict[str, Callable[[type[TicketRow]], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


class TicketStatus(StrEnum):
    PENDING = "pending"
    CREATED = "created"


@dataclass(frozen=True)
class TicketView:
    run_id: str
    status: TicketStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    key: str | None
    url: str | None
    create_sent_at: datetime | None = None


class TicketOutbox:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._insert = _INSERT_IF_ABSENT[engine.dialect.name]
        self._now = clock or (lambda: datetime.now(UTC))

    def owe(self, run_id: str) -> None:
        """Record that `run_id` needs a ticket; idempotent, also when replicas (or the run's
        thread and the ticket loop) say so at the same moment: one statement that leaves an
        existing row alone, where "look, then insert" let the second insert fail."""
        now = self._now()
        with self._sessions.begin() as session:
            session.execute(
                self._insert(TicketRow)
                .values(
                    run_id=run_id,
                    status=TicketStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=[TicketRow.run_id])
            )

    def claim_due(self, limit: int = 10, force: bool = False) -> list[str]:
        """Pending tickets whose time has come, leased to this caller. `force` skips the backoff
        (`rollbot tickets retry`), never a lease another worker holds: two attempts at once
        would be two creates."""
        now = self._now()
        free = or_(TicketRow.leased_until.is_(None), TicketRow.leased_until <= now)
        with self._sessions.begin() as session:
            query = select(TicketRow.run_id).where(TicketRow.status == TicketStatus.PENDING, free)
            if not force:
                query = query.where(TicketRow.next_attempt_at <= now)
            candidates = list(session.scalars(query.order_by(TicketRow.next_attempt_at).limit(limit)))
        claimed = []
        for run_id in candidates:
            with self._sessions.begin() as session:
                condition = [TicketRow.run_id == run_id, TicketRow.status == TicketStatus.PENDING, free]
                if not force:
                    condition.append(TicketRow.next_attempt_at <= now)
                taken = rows_changed(
                    session.execute(
                        update(TicketRow)
                        .where(*condition)
                        .values(next_attempt_at=now + LEASE, leased_until=now + LEASE, updated_at=now)
                    )
                )
            if taken == 1:
                claimed.append(run_id)
        return claimed

    def leased(self) -> list[str]:
        """Pending tickets another worker is attempting right now."""
        now = self._now()
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(TicketRow.run_id).where(
                        TicketRow.status == TicketStatus.PENDING, TicketRow.leased_until > now
                    )
                )
            )

    def failed(self, run_id: str, error: str, retry_in: timedelta) -> None:
        now = self._now()
        with self._sessions.begin() as session:
            row = session.get_one(TicketRow, run_id)
            row.attempts += 1
            row.last_error = error[:1000]
            row.next_attempt_at = now + retry_in
            row.leased_until = None
            row.updated_at = now

    def create_sent(self, run_id: str) -> None:
        """Written before a create goes out: from now on an issue may exist without its key here."""
        now = self._now()
        with self._sessions.begin() as session:
            row = session.get_one(TicketRow, run_id)
            row.create_sent_at, row.updated_at = now, now

    def create_unsent(self, run_id: str) -> None:
        """The create failed before it could make an issue (refused, or answered with an error)."""
        now = self._now()
        with self._sessions.begin() as session:
            row = session.get_one(TicketRow, run_id)
            row.create_sent_at, row.updated_at = None, now

    def keyed(self, run_id: str, key: str, url: str | None) -> None:
        """The ticket exists (its create answered, or a search found it): the key is kept at once,
        while the ticket stays pending until its attachments are all there."""
        now = self._now()
        with self._sessions.begin() as session:
            row = session.get_one(TicketRow, run_id)
            row.key, row.url, row.updated_at = key, url, now

    def created(self, run_id: str, key: str, url: str | None) -> None:
        now = self._now()
        with self._sessions.begin() as session:
            row = session.get_one(TicketRow, run_id)
            row.attempts += 1
            row.status = TicketStatus.CREATED
            row.key, row.url, row.last_error, row.updated_at = key, url, None, now
            row.leased_until = None

    def get(self, run_id: str) -> TicketView | None:
        with self._sessions() as session:
            row = session.get(TicketRow, run_id)
            return _view(row) if row else None

    def all(self, status: TicketStatus | None = None, limit: int = 50) -> list[TicketView]:
        with self._sessions() as session:
            query = select(TicketRow).order_by(TicketRow.created_at.desc()).limit(limit)
            if status is not None:
                query = query.where(TicketRow.status == status)
            return [_view(row) for row in session.scalars(query)]

    def count(self, status: TicketStatus) -> int:
        with self._sessions() as session:
            return int(
                session.scalar(select(func.count()).select_from(TicketRow).where(TicketRow.status == status)) or 0
            )


def _view(row: TicketRow) -> TicketView:
    return TicketView(
        row.run_id,
        TicketStatus(row.status),
        row.attempts,
        row.next_attempt_at,
        row.last_error,
        row.key,
        row.url,
        row.create_sent_at,
    )
