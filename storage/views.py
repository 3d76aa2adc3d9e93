"""What the journal holds, as the core and the front ends see it: frozen views, never ORM rows.

Statuses and views live apart from the repository so that readers (rendering, the postmortem,
metrics) depend on the shape of a run, not on how it is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.runstate import RunKind, RunStatus, StepStatus

__all__ = ["EventView", "NewRun", "RunStatus", "RunView", "StepStatus", "StepView"]


@dataclass(frozen=True)
class NewRun:
    """What the journal needs to know about a plan to record it."""

    target: str
    to_version: str
    requester: str
    steps: Sequence[tuple[str, str]]
    environment: str | None = None
    from_version: str | None = None
    reason: str = ""
    kind: str = RunKind.ROLLBACK
    plan: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepView:
    position: int
    name: str
    description: str
    status: StepStatus
    started_at: datetime | None
    finished_at: datetime | None
    detail: dict[str, Any]
    error: str | None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class EventView:
    id: int
    run_id: str | None
    at: datetime
    actor: str
    kind: str
    outcome: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class RunView:
    id: str
    kind: str
    target: str
    environment: str | None
    from_version: str | None
    to_version: str
    reason: str
    requester: str
    status: RunStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    current_step: str | None
    error: str | None
    next_action: str | None
    owner: str | None
    plan: dict[str, Any]
    summary: dict[str, Any]
    steps: tuple[StepView, ...] = ()
    events: tuple[EventView, ...] = ()
    approver: str | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
