"""What rollbot's own /health probes found, per target: since when the target is (not) ok.

Docker's health log says since when a container has been failing only when its image or
compose file defines a `healthcheck:`, and keeps five results. rollbot probes /health anyway
(status and App Home, every check and plan, a run's health check and soak, a snapshot): each
probe updates one row per target with the last probe, the moment the state it found began (the
first probe that found it) and the last ok probe. That is bounded, the state changes and the
last probe rather than every probe, and one upsert per probe, so replicas probing at once
never collide and a late answer never overwrites a newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from storage.models import HealthProbeRow

# Both dialects' INSERT can say what happens on a conflict; the generic one cannot.
_INSERT: dict[str, Callable[[type[HealthProbeRow]], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert,
    "postgresql": postgresql.insert,
}


@dataclass(frozen=True)
class HealthRecord:
    """The last probe of a target and how long its state has held, as rollbot's probes saw it."""

    target: str
    probed_at: datetime
    ok: bool
    answer: str
    source: str  # what probed: status, check, a run, a snapshot
    since: datetime  # the first probe that found the state `ok` says (its start, for a failing one)
    since_source: str
    last_ok_at: datetime | None  # the newest probe that found it ok: a failure began after it

    @property
    def failing_since(self) -> datetime | None:
        """When the current failure began at the latest, as rollbot saw it; None when it is ok."""
        if self.ok:
            return None
        if self.last_ok_at is not None and self.last_ok_at > self.since:
            return self.last_ok_at  # two probes overlapped: the failure began after the ok one
        return self.since


class HealthProbes:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._insert = _INSERT[engine.dialect.name]

    def probed(self, target: str, ok: bool, answer: str, source: str, at: datetime, began: datetime) -> None:
        """A probe that began at `began` and answered at `at`. A failing probe failed for its whole
        wait (a probe polls until ok), so a failure that starts with it is dated from `began`;
        an ok one from `at`, its one ok answer."""
        since = at if ok else began
        statement = self._insert(HealthProbeRow).values(
            target=target,
            probed_at=at,
            ok=ok,
            answer=answer,
            source=source,
            since=since,
            since_source=source,
            last_ok_at=at if ok else None,
        )
        table, new = HealthProbeRow.__table__.c, statement.excluded
        changed = table.ok != new.ok
        statement = statement.on_conflict_do_update(
            index_elements=[HealthProbeRow.target],
            set_={
                "probed_at": new.probed_at,
                "ok": new.ok,
                "answer": new.answer,
                "source": new.source,
                "since": case((changed, new.since), else_=table.since),
                "since_source": case((changed, new.since_source), else_=table.since_source),
                "last_ok_at": case((new.ok, new.probed_at), else_=table.last_ok_at),
            },
            where=new.probed_at >= table.probed_at,
        )
        with self._sessions.begin() as session:
            session.execute(statement)

    def record(self, target: str) -> HealthRecord | None:
        with self._sessions() as session:
            row = session.get(HealthProbeRow, target)
            if row is None:
                return None
            return HealthRecord(
                row.target,
                row.probed_at,
                row.ok,
                row.answer,
                row.source,
                row.since,
                row.since_source,
                row.last_ok_at,
            )
