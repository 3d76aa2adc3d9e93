"""SQLAlchemy models of the journal. Changes to them need an Alembic revision in `migrations/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite, which stores datetimes without a zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the journal; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class BoundedString(TypeDecorator[str]):
    """Text stored the same on both backends, whoever typed it.

    PostgreSQL refuses a NUL character in text and a value longer than its column, where SQLite
    takes both; a Slack field can hold either. So a NUL becomes U+FFFD and an overlong value is
    clipped (its last character becomes "…") on every backend, in stored values and in the
    values a query compares with alike, instead of a write failing on PostgreSQL only.
    """

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        value = value.replace("\x00", "\ufffd")
        limit = cast(String, self.impl_instance).length
        return value if limit is None or len(value) <= limit else value[: limit - 1] + "…"


class CleanText(BoundedString):
    """Unbounded text (`TEXT`), NULs replaced as in `BoundedString`."""

    impl = Text
    cache_ok = True


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON, str: BoundedString()}


# A running or interrupted rollback or upgrade holds its target: the database allows one such run per target.
ONE_HOLDER = "status IN ('running', 'interrupted') AND kind IN ('rollback', 'upgrade')"


class RunRow(Base):
    """One rollback request: planned, then refused, cancelled, or run to an outcome."""

    __tablename__ = "runs"
    __table_args__ = (
        Index(
            "ux_runs_one_running_per_target",
            "target",
            unique=True,
            sqlite_where=text(ONE_HOLDER),
            postgresql_where=text(ONE_HOLDER),
        ),
    )

    id: Mapped[str] = mapped_column(BoundedString(32), primary_key=True)
    kind: Mapped[str] = mapped_column(BoundedString(32), default="rollback")
    target: Mapped[str] = mapped_column(BoundedString(128), index=True)
    environment: Mapped[str | None] = mapped_column(BoundedString(64))
    from_version: Mapped[str | None] = mapped_column(BoundedString(160))
    to_version: Mapped[str] = mapped_column(BoundedString(160))
    reason: Mapped[str] = mapped_column(CleanText, default="")
    requester: Mapped[str] = mapped_column(BoundedString(256))
    status: Mapped[str] = mapped_column(BoundedString(16), index=True)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    current_step: Mapped[str | None] = mapped_column(BoundedString(64))
    error: Mapped[str | None] = mapped_column(CleanText)
    next_action: Mapped[str | None] = mapped_column(CleanText)
    owner: Mapped[str | None] = mapped_column(BoundedString(256))
    epoch: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every take-over: see storage/runstate.py
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    approver: Mapped[str | None] = mapped_column(BoundedString(256))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    heartbeat_at: Mapped[datetime | None]
    reported_at: Mapped[datetime | None]


class StepRow(Base):
    """One step of a run, written before it starts and again when it ends."""

    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    position: Mapped[int]
    name: Mapped[str] = mapped_column(BoundedString(64))
    description: Mapped[str] = mapped_column(CleanText, default="")
    status: Mapped[str] = mapped_column(BoundedString(16))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(CleanText)


class EventRow(Base):
    """The journal proper: who did what, when, with which outcome. Append-only."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(BoundedString(256))
    kind: Mapped[str] = mapped_column(BoundedString(64))
    outcome: Mapped[str | None] = mapped_column(BoundedString(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TicketRow(Base):
    """The outbox of postmortem tickets: owed (pending) until the sink confirms one exists."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_status_next", "status", "next_attempt_at"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    status: Mapped[str] = mapped_column(BoundedString(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(CleanText)
    key: Mapped[str | None] = mapped_column(BoundedString(128))
    url: Mapped[str | None] = mapped_column(CleanText)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    create_sent_at: Mapped[datetime | None]  # a create went out; its answer may have been lost
    leased_until: Mapped[datetime | None]  # a worker is attempting the ticket until then


class SchemaSightingRow(Base):
    """A version of a target seen healthy while its brain was at a schema: what that version reads.

    The real Engine's images carry no label saying which brain schema they read, so rollbot keeps
    what it has seen itself (snapshots, status, every run's health check). One row per
    (target, version, schema), with when it was first and last seen and by what."""

    __tablename__ = "brain_schemas"

    target: Mapped[str] = mapped_column(BoundedString(128), primary_key=True)
    version: Mapped[str] = mapped_column(BoundedString(160), primary_key=True)
    schema: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    source: Mapped[str] = mapped_column(BoundedString(64))


class HealthProbeRow(Base):
    """rollbot's own /health probes of a target, kept bounded: the last probe, and when the
    state it found (ok or not) began as far as rollbot's probes saw, and the last ok probe.

    Docker's health log exists only for images or compose files with a `healthcheck:`; these
    rows tell `check` since when /health has failed on every target rollbot probes. One row
    per target, rewritten by one upsert per probe, never a row per probe."""

    __tablename__ = "health_probes"

    target: Mapped[str] = mapped_column(BoundedString(128), primary_key=True)
    probed_at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    answer: Mapped[str] = mapped_column(BoundedString(300))
    source: Mapped[str] = mapped_column(BoundedString(64))
    since: Mapped[datetime]  # the first probe that found the state `ok` holds now
    since_source: Mapped[str] = mapped_column(BoundedString(64))
    last_ok_at: Mapped[datetime | None]


class KnownBadRow(Base):
    """A version of a target that was rolled back from: refused as a target until it is cleared.

    One row per marking; a clear fills `cleared_*` and never deletes the row, so `history` shows
    both. At most one uncleared row per (target, version) is looked for; a second marking of a
    version already marked adds a row (another run rolled it back)."""

    __tablename__ = "known_bad"
    __table_args__ = (Index("ix_known_bad_target_version", "target", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(BoundedString(128))
    version: Mapped[str] = mapped_column(BoundedString(160))
    run_id: Mapped[str] = mapped_column(BoundedString(32))
    reason: Mapped[str] = mapped_column(CleanText, default="")
    marked_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[str | None] = mapped_column(BoundedString(256))
    cleared_reason: Mapped[str | None] = mapped_column(CleanText)
