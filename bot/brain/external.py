"""What a rollback cannot undo: the destructive calls the bad version made to the outside world.

The runbook: "The new version sent destructive MCP calls (deleted external resources, sent
emails). The Engine's state is recoverable; the external state isn't." The Engine records its
calls in a table of its brain (`brain.external_calls` names it and its columns); this reads the
calls of the destructive tools made in the bad version's life, so the plan, the channel and the
postmortem can say plainly what stays done. Reads only, the live brain opened read-only.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.brain.facts import BrainError, readonly
from bot.config import ExternalCallsConfig

SHOWN_CALLS = 50  # the plan and the journal keep the first calls; the count is always whole


@dataclass(frozen=True)
class ExternalCall:
    tool: str
    at: str
    outcome: str | None = None

    def describe(self) -> str:
        return f"{self.at} {self.tool}" + (f" ({self.outcome})" if self.outcome else "")


@dataclass(frozen=True)
class ExternalEffects:
    """The destructive calls of the bad window: `count` of them, the first `calls`, since when."""

    table: str
    since: str | None  # ISO time the bad version went live; None: every recorded call counts
    count: int = 0
    calls: tuple[ExternalCall, ...] = ()
    problem: str | None = None  # the calls could not be read: the plan says so, and why

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExternalEffects:
        return cls(
            table=str(data.get("table", "")),
            since=data.get("since"),
            count=int(data.get("count") or 0),
            calls=tuple(ExternalCall(**call) for call in data.get("calls") or ()),
            problem=data.get("problem"),
        )

    @property
    def since_shown(self) -> str:
        """The start of the window to the second, for people; `since` keeps it whole for counting."""
        return re.sub(r"\.\d+", "", self.since) if self.since else "the first record"

    def by_tool(self) -> str:
        """`send_email ×2, delete_resource ×1` over the calls kept."""
        counts = Counter(call.tool for call in self.calls)
        return ", ".join(f"{tool} ×{count}" for tool, count in counts.most_common())

    def headline(self) -> str:
        if self.problem:
            return f"external effects could not be read from {self.table}: {self.problem}"
        if not self.count:
            return f"no destructive external calls in {self.table} since {self.since_shown}"
        return f"{self.count} external effect(s) not rolled back ({self.by_tool()}) since {self.since_shown}"


def destructive_calls(brain: Path, config: ExternalCallsConfig, since: datetime | None) -> ExternalEffects:
    """The destructive tools' calls recorded at or after `since`, oldest first.

    Times are compared as times, not text: the Engine may write ISO 8601 with any offset or
    seconds since the epoch. A time that cannot be read counts (rollbot would rather list a call
    too many than hide one), and its text is shown as it is."""
    since_text = since.astimezone(UTC).isoformat() if since else None  # whole: the run counts again from it
    effects = ExternalEffects(config.table, since_text)
    if not brain.is_file():
        return effects
    outcome = _quote(config.outcome) if config.outcome else "NULL"
    marks = ", ".join("?" for _ in config.destructive)
    query = (
        f"SELECT {_quote(config.tool)}, {_quote(config.at)}, {outcome} FROM {_quote(config.table)} "
        f"WHERE {_quote(config.tool)} IN ({marks}) ORDER BY rowid"
    )
    try:
        with closing(readonly(brain)) as connection:
            rows = connection.execute(query, config.destructive).fetchall()
    except (sqlite3.Error, BrainError) as error:
        return ExternalEffects(config.table, since_text, problem=str(error))
    calls = [ExternalCall(str(tool), _time_text(at), None if out is None else str(out)) for tool, at, out in rows]
    in_window = [call for call, (_, at, _) in zip(calls, rows, strict=True) if _in_window(at, since)]
    return ExternalEffects(config.table, since_text, len(in_window), tuple(in_window[:SHOWN_CALLS]))


def _in_window(at: object, since: datetime | None) -> bool:
    if since is None:
        return True
    when = _parse(at)
    return when is None or when >= since


def _parse(at: object) -> datetime | None:
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return datetime.fromtimestamp(at, UTC)
    if isinstance(at, str):
        try:
            parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _time_text(at: object) -> str:
    parsed = _parse(at)
    return parsed.astimezone(UTC).isoformat(timespec="seconds") if parsed else str(at)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
