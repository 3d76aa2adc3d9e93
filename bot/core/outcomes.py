"""What the core hands back to its front ends: plain values they render, and nothing to call.

Kept apart from the façade (bot/core/rollbot.py) so that the parts of the core, the drill and
the front ends can name these types without importing the façade and everything it composes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.brain.snapshots import Snapshot
from bot.planning.kept_images import KeptVersions
from bot.planning.plan import Plan
from storage import RunView


class Recovery(StrEnum):
    """What a person may do with an interrupted run."""

    RESUME = "resume"
    ABORT = "abort"


@dataclass(frozen=True)
class PlannedRun:
    run: RunView
    plan: Plan


@dataclass(frozen=True)
class Outcome:
    """What became of a click: refused (with why), cancelled, re-planned, or run to an end."""

    refusal: str | None = None
    cancelled: bool = False
    replanned: PlannedRun | None = None
    run: RunView | None = None
    follow_up: PlannedRun | None = None  # the rollback offered at once after an upgrade that went wrong


@dataclass(frozen=True)
class ServiceState:
    """What a person needs to see about a service before deciding how an interrupted run goes on."""

    image: str | None
    container_state: str
    healthy: bool | None
    health: str
    brain: str | None = None

    def describe(self) -> str:
        running = f"{self.image} ({self.container_state})" if self.image else self.container_state
        brain = f"; {self.brain}" if self.brain else ""
        return f"container: {running}; health: {self.health}{brain}"


@dataclass(frozen=True)
class TargetStatus:
    name: str
    environment: str
    running_version: str | None
    container_state: str
    healthy: bool | None
    health: str
    newest_snapshot: Snapshot | None
    run_in_progress: str | None
    kept: KeptVersions | None = None
    known_bad: tuple[str, ...] = ()  # versions rolled back from and not cleared, one line each
