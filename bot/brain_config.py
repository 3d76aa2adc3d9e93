"""The brain's part of a target's configuration: where it is, its snapshots, and what its rows
say about people (`affected`) and about the outside world (`external_calls`).

Table and column names here go into SQL (quoted) when the loss report and the plan read the
brain, so each is checked when the file is read: a wrong one is a config error, never a query
that fails in the middle of an incident.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Frozen(BaseModel):
    """Settings never change once read, and a key rollbot does not know is a mistake to name."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# A table's or a column's name as the brain's own schema spells it: rollbot puts these names into
# SQL (quoted), so anything else is refused when the configuration is read, not when a plan runs.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _identifier(value: str, what: str) -> str:
    if not IDENTIFIER.fullmatch(value):
        raise ValueError(f"a {what} name (letters, digits and _, not first a digit), not {value!r}")
    return value


class ExternalCallsConfig(Frozen):
    """Where the Engine records the calls it makes to the outside world (MCP tools): the runbook's
    "destructive MCP calls (deleted external resources, sent emails)" that no restore undoes."""

    table: str
    tool: str  # the column naming the tool called
    at: str  # the column with the call's time (ISO 8601 text, or seconds since the epoch)
    outcome: str | None = None  # the column with what came of it, shown beside each call
    destructive: tuple[str, ...] = Field(min_length=1)  # tool names whose effects stay after a rollback

    @field_validator("table", "tool", "at", "outcome")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else _identifier(value, "column")


class BrainConfig(Frozen):
    """Where the Engine keeps its SQLite brain and the snapshots of it, and what its rows say
    about people (`affected`) and about the outside world (`external_calls`)."""

    path: Path
    snapshots_dir: Path
    schema_query: str | None = None  # default: PRAGMA user_version
    max_snapshot_age_hours: float = Field(24 * 7, gt=0)
    # table -> the columns that identify a user or a conversation: the loss report names them
    affected: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    external_calls: ExternalCallsConfig | None = None

    @field_validator("affected")
    @classmethod
    def _affected_names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for table, columns in value.items():
            _identifier(table, "table")
            if not columns:
                raise ValueError(f"at least one column that identifies a user or a conversation for {table!r}")
            for column in columns:
                _identifier(column, f"{table}.column")
            if len(set(columns)) != len(columns):
                raise ValueError(f"each column of {table!r} once")
        return value
