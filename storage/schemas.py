"""What rollbot has seen of each version's brain: the schema it was healthy on.

A real Engine image says nothing about the brain schema it reads. Every time rollbot sees a
version answer /health ok while the brain is at some schema (a snapshot, `status`, the end of a
run or a drill), it writes that down here, so the next rollback to that version can tell from
its own records whether the brain must be restored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from storage.models import SchemaSightingRow

# Both dialects' INSERT can say what happens on a conflict; the generic one cannot.
_INSERT: dict[str, Callable[[type[SchemaSightingRow]], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


@dataclass(frozen=True)
class SchemaSighting:
    """`version` of `target` answered healthy while the brain was at `schema`."""

    target: str
    version: str
    schema: int
    first_seen: datetime
    last_seen: datetime
    source: str


class SchemaSightings:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._insert = _INSERT[engine.dialect.name]
        self._now = clock or (lambda: datetime.now(UTC))

    def saw(self, target: str, version: str, schema: int, source: str) -> None:
        """Record a sighting; one statement, so replicas seeing the same thing never collide."""
        now = self._now()
        statement = self._insert(SchemaSightingRow).values(
            target=target, version=version, schema=schema, first_seen=now, last_seen=now, source=source
        )
        statement = statement.on_conflict_do_update(
            index_elements=[SchemaSightingRow.target, SchemaSightingRow.version, SchemaSightingRow.schema],
            set_={"last_seen": now, "source": source},
        )
        with self._sessions.begin() as session:
            session.execute(statement)

    def newest_schema(self, target: str, version: str) -> SchemaSighting | None:
        """The highest schema `version` was seen healthy on: it reads at least that one."""
        with self._sessions() as session:
            row = session.scalars(
                select(SchemaSightingRow)
                .where(SchemaSightingRow.target == target, SchemaSightingRow.version == version)
                .order_by(SchemaSightingRow.schema.desc(), SchemaSightingRow.last_seen.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            return SchemaSighting(row.target, row.version, row.schema, row.first_seen, row.last_seen, row.source)

    def healthy_versions(self, target: str) -> list[SchemaSighting]:
        """Every version of `target` seen healthy, once each (its latest sighting), the most
        recently seen first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(SchemaSightingRow)
                .where(SchemaSightingRow.target == target)
                .order_by(SchemaSightingRow.last_seen.desc())
            ).all()
        latest: dict[str, SchemaSighting] = {}
        for row in rows:
            latest.setdefault(
                row.version,
                SchemaSighting(row.target, row.version, row.schema, row.first_seen, row.last_seen, row.source),
            )
        return list(latest.values())
