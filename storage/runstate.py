"""The run as a state machine: its statuses, kinds, event kinds and the one table of allowed moves.

    (new) ──plan──▶ planned ──start──▶ running ──succeed/fail/abort──▶ succeeded | failed | aborted
      │               │                 │  ▲
      └─refuse─▶ refused  └─cancel─▶ cancelled  interrupt│  │reclaim (resume or abort: a take-over)
                                        ▼  │
                                     interrupted

A move is allowed when `(from, move)` is in `MOVES`; the repository performs it as one
conditional UPDATE whose WHERE names the status it moves from and, for a runner's writes, its
`Lease` (owner and epoch). Every take-over (`interrupt`, `reclaim`) bumps the epoch, so a runner
that was taken over, even one in the same process (owners are `host:pid`), is refused by the
database itself, not by a check that could race.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.errors import JournalError


class RunStatus(StrEnum):
    PLANNED = "planned"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ABORTED = "aborted"

    @property
    def is_final(self) -> bool:
        return self not in (RunStatus.PLANNED, RunStatus.RUNNING)

    @property
    def holds_target(self) -> bool:
        """A run in this status owns its target: no other rollback of it may be planned or started.
        An interrupted run left the service half-way; only its resume or abort may touch it."""
        return self in (RunStatus.RUNNING, RunStatus.INTERRUPTED)


HOLDING = (RunStatus.RUNNING, RunStatus.INTERRUPTED)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class RunKind(StrEnum):
    ROLLBACK = "rollback"
    UPGRADE = "upgrade"  # the same runner forward: snapshot first, no postmortem when it goes well
    DRILL = "drill"


# The kinds the runner executes: a running or interrupted one holds its target (see storage/models.py).
RUNNER_KINDS = (RunKind.ROLLBACK, RunKind.UPGRADE)


class EventKind(StrEnum):
    """Every kind of journal event; front ends and the postmortem read these back."""

    RUN_PLANNED = "run.planned"
    RUN_REFUSED = "run.refused"
    RUN_CONFIRMED = "run.confirmed"
    RUN_APPROVED = "run.approved"
    RUN_STARTED = "run.started"
    RUN_FINISHED = "run.finished"
    RUN_INTERRUPTED = "run.interrupted"
    RUN_RESUMED = "run.resumed"
    RUN_ABORTING = "run.aborting"
    RUN_JOURNAL_FAILED = "run.journal_failed"
    STEP_STARTED = "step.started"
    STEP_FINISHED = "step.finished"
    BRAIN_SWAP = "brain.swap"
    BRAIN_INSPECTED = "brain.inspected"
    BRAIN_REPLAY_CHECKED = "brain.replay_checked"  # a dry run of `rollbot replay`: what it would copy
    BRAIN_REPLAYED = "brain.replayed"  # rows copied from a run's forensic copy back into the live brain, each key
    BRAIN_PUT_BACK = "brain.put_back"
    BRAIN_PUT_BACK_FAILED = "brain.put_back_failed"
    RECOVERY_NOT_STARTED = "recovery.not_started"
    RECOVERY_LEFT_RUNNING = "recovery.left_running"
    RECOVERY_COMPOSE_PUT_BACK = "recovery.compose_put_back"
    RECOVERY_COMPOSE_PUT_BACK_FAILED = "recovery.compose_put_back_failed"
    RECOVERY_PREVIOUS_STARTED = "recovery.previous_started"
    RECOVERY_PREVIOUS_START_FAILED = "recovery.previous_start_failed"
    SNAPSHOT_TAKEN = "snapshot.taken"
    SOAK_PROGRESS = "soak.progress"  # the all-clear's soak window: seconds left in a clean window
    KNOWN_BAD_MARKED = "known_bad.marked"  # a version rolled back from: root cause first
    KNOWN_BAD_CLEARED = "known_bad.cleared"  # someone said why it may be deployed again


class Move(StrEnum):
    """What may happen to a run. `ACT` is a runner's write that keeps it running (a step, a
    heartbeat, a note): it changes no status but must still hold the lease."""

    PLAN = "plan"
    REFUSE = "refuse"
    CANCEL = "cancel"
    START = "start"
    ACT = "act"
    SUCCEED = "succeed"
    FAIL = "fail"
    ABORT = "abort"
    SHUT_DOWN = "shut_down"
    INTERRUPT = "interrupt"
    RECLAIM = "reclaim"


# (status moved from, move) -> status moved to. `None` is a run not yet recorded.
MOVES: dict[tuple[RunStatus | None, Move], RunStatus] = {
    (None, Move.PLAN): RunStatus.PLANNED,
    (None, Move.REFUSE): RunStatus.REFUSED,
    (RunStatus.PLANNED, Move.CANCEL): RunStatus.CANCELLED,
    (RunStatus.PLANNED, Move.START): RunStatus.RUNNING,
    (RunStatus.RUNNING, Move.ACT): RunStatus.RUNNING,
    (RunStatus.RUNNING, Move.SUCCEED): RunStatus.SUCCEEDED,
    (RunStatus.RUNNING, Move.FAIL): RunStatus.FAILED,
    (RunStatus.RUNNING, Move.ABORT): RunStatus.ABORTED,
    (RunStatus.RUNNING, Move.SHUT_DOWN): RunStatus.INTERRUPTED,
    (RunStatus.RUNNING, Move.INTERRUPT): RunStatus.INTERRUPTED,
    (RunStatus.INTERRUPTED, Move.RECLAIM): RunStatus.RUNNING,
}

# Moves that hand the run to someone else: the epoch goes up, every older lease is void.
TAKE_OVERS = frozenset({Move.START, Move.INTERRUPT, Move.RECLAIM})

# The final status a runner may write with `finish`, and the move that writes it.
FINISHING: dict[RunStatus, Move] = {
    RunStatus.SUCCEEDED: Move.SUCCEED,
    RunStatus.FAILED: Move.FAIL,
    RunStatus.ABORTED: Move.ABORT,
    RunStatus.INTERRUPTED: Move.SHUT_DOWN,
}


def sources(move: Move) -> tuple[RunStatus, ...]:
    """The statuses `move` is allowed from (what the conditional UPDATE's WHERE names)."""
    return tuple(status for (status, allowed), _ in MOVES.items() if allowed is move and status is not None)


def target_of(move: Move, current: RunStatus | None) -> RunStatus:
    """The status `move` leads to from `current`; `IllegalMove` when the table forbids it."""
    try:
        return MOVES[(current, move)]
    except KeyError:
        raise IllegalMove(f"a {current or 'new'} run cannot {move}") from None


@dataclass(frozen=True)
class Lease:
    """A fencing token: who runs the run, and in which of its tenures. Every runner write names
    it; the database refuses a write whose lease a take-over has replaced."""

    owner: str
    epoch: int

    def as_details(self) -> dict[str, Any]:
        return {"owner": self.owner, "epoch": self.epoch}

    @staticmethod
    def of(details: dict[str, Any]) -> Lease:
        """The lease a `run.started` / `run.resumed` / `run.aborting` event handed out."""
        return Lease(str(details["owner"]), int(details["epoch"]))


class IllegalMove(JournalError, ValueError):
    """The table of moves does not allow this move from the run's status."""


class LostRun(JournalError, RuntimeError):
    """This runner no longer holds the run (it was taken over, or finished by someone else):
    it must stop before touching anything else."""
