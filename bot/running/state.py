"""What a run has done so far: the one record the loop, the steps, compensation and resume share.

It lives apart from all of them because each of them reads it to decide something different
(which step runs next, what to undo, how to describe a failure), and none of them owns it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.adapters.compose_file import ComposeEdit, ImageSite
from bot.brain.swap import Staged, Swapped, brain_in_place
from bot.config import TargetConfig
from bot.errors import RollbotError
from bot.planning.plan import Plan, StepKind
from bot.ports import Compose, HealthResult
from bot.running.soak import SoakResult
from storage import EventView, Lease, StepStatus

ProgressSink = Callable[[EventView], None]
BEFORE_STOP = frozenset(
    {StepKind.CAPTURE_LOGS, StepKind.STAGE_SNAPSHOT, StepKind.SET_IMAGE_TAG, StepKind.PULL, StepKind.SNAPSHOT_BRAIN}
)
DONE = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED})


class StepFailed(RollbotError):
    """A step could not do its work; the message is what the journal and the person see."""


@dataclass
class RunState:
    """What the run has done so far, which decides how a failure is described and undone."""

    plan: Plan
    target: TargetConfig
    run_id: str
    compose: Compose
    edit: ComposeEdit | None = None
    log_file: Path | None = None
    stop_started: float | None = None
    stop_started_at: datetime | None = None  # from the journal, when the stop began before a restart
    began_at: datetime | None = None  # when a resumed run first started: its total counts from there
    health: HealthResult | None = None
    downtime: float | None = None
    staged: Staged | None = None
    swapped: Swapped | None = None
    lease: Lease | None = None  # the fencing token every write of this runner names
    reached: StepKind | None = None  # the step whose work began last
    past_stop: bool = False  # the drain-stop has begun: from here the run must not strand the Engine
    journal_down: str | None = None  # why the journal could not be written, once it could not after the stop
    deferred: list[Callable[[], EventView]] = field(default_factory=list)  # writes owed to the journal
    notify: Callable[[EventView], None] | None = None  # the run's progress sink, for notes a step writes
    marks: dict[str, datetime] = field(default_factory=dict)  # stop, start, all-clear: for the chart
    soak: SoakResult | None = None  # the all-clear's soak window: errors recovered, or persisting


def image_site(state: RunState) -> ImageSite:
    """Where the plan said the tag is written; a plan journaled before plans named it edits the compose file."""
    return state.plan.image_site or ImageSite(state.target.compose_file)


def backup_path(evidence_dir: Path, state: RunState) -> Path:
    """The copy of the edited file as it was before the run: the only one, so undo and resume read it."""
    return evidence_dir / state.run_id / f"{image_site(state).path.name}.before"


def snapshot_in_place(state: RunState) -> bool:
    brain, swapped = state.plan.brain, state.swapped
    if brain is None or swapped is None:
        return False
    return brain_in_place(brain.path, swapped.original_inode, swapped.staged_inode) == "snapshot"
