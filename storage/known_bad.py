"""Known-bad versions: a version rolled back from is refused as a target until someone clears it.

The runbook: "Don't redeploy in panic. Whatever broke needs root cause first." A rollback that
succeeded marks the version it left as known-bad for its target, with the run and its reason;
preflight then refuses an upgrade (or a "rollback") to it, naming that run, until a person clears
it with a reason. A mark and a clear are each written with their journal event in one
transaction, and a clear never deletes the mark: `history` shows both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from storage.heartbeats import JournalHeartbeats
from storage.models import KnownBadRow
from storage.runstate import EventKind


@dataclass(frozen=True)
class KnownBad:
    """`version` of `target` was rolled back from by `run_id` at `marked_at` (and cleared, if `cleared_at`)."""

    target: str
    version: str
    run_id: str
    reason: str
    marked_at: datetime
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    cleared_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def describe(self) -> str:
        """One line for `status`, `history` and a refusal."""
        marked = f"{self.version} is known-bad: rolled back by run {self.run_id} at {self.marked_at:%Y-%m-%d %H:%M} UTC"
        marked += f" ({self.reason})" if self.reason else ""
        if self.active:
            return marked
        return f"{marked}; cleared by {self.cleared_by} at {self.cleared_at:%Y-%m-%d %H:%M} UTC: {self.cleared_reason}"


class JournalKnownBad(JournalHeartbeats):
    """The known-bad table, written beside the journal's events."""

    def mark_known_bad(self, target: str, version: str, run_id: str, reason: str, actor: str) -> KnownBad:
        """Mark `version` known-bad because run `run_id` rolled back from it; an active mark of the
        same run is not written twice (a resumed run that ends again)."""
        with self._sessions.begin() as session:
            existing = session.scalars(
                select(KnownBadRow).where(
                    KnownBadRow.target == target,
                    KnownBadRow.version == version,
                    KnownBadRow.run_id == run_id,
                    KnownBadRow.cleared_at.is_(None),
                )
            ).first()
            if existing is not None:
                return _view(existing)
            row = KnownBadRow(target=target, version=version, run_id=run_id, reason=reason, marked_at=self._now())
            session.add(row)
            session.flush()
            self._event(
                session, run_id, actor, EventKind.KNOWN_BAD_MARKED, None, {"target": target, "version": version}
            )
            return _view(row)

    def known_bad(self, target: str, version: str) -> KnownBad | None:
        """The newest active mark of `version` of `target`, or None when it may be deployed."""
        with self._sessions() as session:
            row = session.scalars(
                select(KnownBadRow)
                .where(KnownBadRow.target == target, KnownBadRow.version == version, KnownBadRow.cleared_at.is_(None))
                .order_by(KnownBadRow.marked_at.desc(), KnownBadRow.id.desc())
                .limit(1)
            ).first()
            return _view(row) if row is not None else None

    def known_bad_versions(self, target: str | None = None, active_only: bool = False) -> list[KnownBad]:
        """Marks of a target (or all), newest first; cleared ones too unless `active_only`."""
        with self._sessions() as session:
            query = select(KnownBadRow).order_by(KnownBadRow.marked_at.desc(), KnownBadRow.id.desc())
            if target is not None:
                query = query.where(KnownBadRow.target == target)
            if active_only:
                query = query.where(KnownBadRow.cleared_at.is_(None))
            return [_view(row) for row in session.scalars(query)]

    def clear_known_bad(self, target: str, version: str, actor: str, reason: str) -> list[KnownBad]:
        """Clear every active mark of `version` of `target`, journaled with who and why; the
        marks cleared (none: it was not known-bad)."""
        with self._sessions.begin() as session:
            rows = list(
                session.scalars(
                    select(KnownBadRow).where(
                        KnownBadRow.target == target, KnownBadRow.version == version, KnownBadRow.cleared_at.is_(None)
                    )
                )
            )
            if not rows:
                return []
            now = self._now()
            for row in rows:
                row.cleared_at, row.cleared_by, row.cleared_reason = now, actor, reason
            session.flush()
            self._event(
                session,
                None,
                actor,
                EventKind.KNOWN_BAD_CLEARED,
                None,
                {"target": target, "version": version, "reason": reason, "runs": [row.run_id for row in rows]},
            )
            return [_view(row) for row in rows]


def _view(row: KnownBadRow) -> KnownBad:
    return KnownBad(
        row.target,
        row.version,
        row.run_id,
        row.reason,
        row.marked_at,
        row.cleared_at,
        row.cleared_by,
        row.cleared_reason,
    )
