"""The runner's writes to the journal, and what happens when the journal cannot take them.

A run must never strand the Engine because rollbot's own database failed: before the drain-stop
a journal that stays unusable ends the run (`JournalDown`, and its changes are undone); from the
stop on, writes are kept (deferred) and owed to the journal, the run goes on, and its last write
pays the debt or, failing that, the outcome reaches the caller and the channel all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot.errors import JournalError
from bot.planning.plan import StepKind
from bot.running.fingerprints import left_by
from bot.running.state import ProgressSink, RunState, image_site
from bot.running.summary import RunSummary
from storage import EventKind, EventView, Journal, RunStatus, RunView, StepStatus

log = logging.getLogger(__name__)


class JournalDown(JournalError):
    """The journal could not be written, retries included, before the drain-stop: the run ends."""


def _transient(error: BaseException) -> bool:
    """A database failure worth another try (locked, full, unreachable); a constraint the
    database enforces (one run per target) is an answer, not a failure."""
    return isinstance(error, SQLAlchemyError) and not isinstance(error, IntegrityError)


def journal_retry(attempts: int = 5, first_wait: float = 0.2, max_wait: float = 3.0) -> Retrying:
    """How the runner retries a journal write: a few attempts over some seconds, enough for a
    busy or restarting database, short enough not to hold a stopped Engine down for long."""
    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=first_wait, max=max_wait),
        retry=retry_if_exception(_transient),
        reraise=True,
    )


def first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.splitlines()[0] if text else type(error).__name__


def journal_next_action(state: RunState, error: object) -> str:
    return (
        f"fix rollbot's database ({error}); the journal may still show run {state.run_id} as running: "
        f"once it is marked interrupted, check the service and abort it (`rollbot abort {state.run_id}`)"
    )


class JournalWrites:
    """Every write one runner makes, each naming the run's lease and retried while the database fails."""

    def __init__(self, journal: Journal, actor: str, retry: Retrying) -> None:
        self._journal = journal
        self._actor = actor
        self._retry = retry

    def write(self, write: Callable[[], EventView]) -> EventView:
        """One journal write, retried while the database fails (busy, full, unreachable); a
        refusal of the state machine (`LostRun`, `IllegalMove`) is an answer, never retried."""
        return self._retry(write)

    def boundary(self, state: RunState, notify: ProgressSink, write: Callable[[], EventView]) -> None:
        """A step boundary's write. Once the drain-stop has begun, a journal that stays unusable
        must not strand the Engine: the write is kept for later and the run goes on (`up`, the
        health check); before it, the run stops (`JournalDown`) and undoes what it changed."""
        if state.journal_down is not None:
            state.deferred.append(write)
            return
        try:
            notify(self.write(write))
        except SQLAlchemyError as error:
            log.error("run %s: the journal cannot be written: %s", state.run_id, error)
            if not state.past_stop:
                raise JournalDown(first_line(error)) from error
            state.journal_down = first_line(error)
            state.deferred.append(write)

    def note(self, state: RunState, notify: ProgressSink, kind: EventKind, details: dict[str, Any]) -> None:
        """A fact of the run (a put-back, a recovery), written only while the runner holds the run."""
        self.boundary(
            state, notify, lambda: self._journal.note(state.run_id, self._actor, kind, details, owner=state.lease)
        )

    def note_now(self, state: RunState, kind: EventKind, details: dict[str, Any]) -> EventView:
        """A fact that must be in the journal before the next side effect (where the original brain
        goes): no deferring, a journal that cannot take it fails the step."""
        return self.write(lambda: self._journal.note(state.run_id, self._actor, kind, details, owner=state.lease))

    def hold(self, state: RunState) -> None:
        """Before a side effect outside a step (an undo, a put-back): `LostRun` unless this runner
        still holds the run. With the journal down after the stop, nothing can be asked: the
        runner goes on, since leaving the Engine stopped is the worse harm."""
        if state.journal_down is not None or state.lease is None:
            return
        lease = state.lease
        try:
            self._retry(lambda: self._journal.hold(state.run_id, lease))
        except SQLAlchemyError as error:
            if not state.past_stop:
                raise JournalDown(first_line(error)) from error
            state.journal_down = first_line(error)

    def step_end(
        self, state: RunState, position: int, status: StepStatus, detail: dict[str, Any], error: str | None = None
    ) -> Callable[[], EventView]:
        """The write that ends a step, with what the step left behind (the edited file and the
        brain, hashed as they are now): what a later resume or abort checks is still so."""
        brain = state.plan.brain.path if state.plan.brain is not None else None
        quiet = state.past_stop and state.reached in (StepKind.STOP, StepKind.SWAP_BRAIN)  # the Engine is stopped
        left = left_by(image_site(state).path, brain, quiet)
        return lambda: self._journal.step_finished(
            state.run_id, position, self._actor, status, detail, error, owner=state.lease, left=left
        )

    def finish(
        self, state: RunState, status: RunStatus, error: str | None, next_action: str | None, summary: RunSummary
    ) -> Callable[[], EventView]:
        return lambda: self._journal.finish(
            state.run_id, self._actor, status, error, next_action, summary.to_dict(), owner=state.lease
        )

    def end(
        self,
        state: RunState,
        status: RunStatus,
        error: str | None,
        next_action: str | None,
        summary: RunSummary,
        notify: ProgressSink,
    ) -> RunView:
        """The run's last write: first whatever the journal owes (writes kept while it failed),
        then the outcome. A journal still unusable gets the outcome in the returned view and the
        last message all the same, with where the service is: never only "the journal failed"."""
        try:
            for write in state.deferred:
                notify(self.write(write))
            state.deferred.clear()
            notify(self.write(self.finish(state, status, error, next_action, summary)))
            return self._journal.run(state.run_id)
        except SQLAlchemyError as failure:
            log.error("run %s ended %s but the journal cannot be written: %s", state.run_id, status, failure)
            problem = state.journal_down or first_line(failure)
            summary = summary.with_journal_problem(
                f"the journal could not be written ({problem}); this outcome is not in it yet"
            )
            view = self._unjournaled(state, status, error, next_action or journal_next_action(state, problem), summary)
            notify(
                EventView(
                    0,
                    state.run_id,
                    datetime.now(UTC),
                    self._actor,
                    EventKind.RUN_FINISHED,
                    status,
                    {"error": error, "next_action": view.next_action, **summary.to_dict()},
                )
            )
            return view

    def _unjournaled(
        self, state: RunState, status: RunStatus, error: str | None, next_action: str, summary: RunSummary
    ) -> RunView:
        """The run as it ended, for the caller to show when the journal cannot take it."""
        try:
            known = self._journal.run(state.run_id)
        except SQLAlchemyError:
            plan = state.plan
            known = RunView(
                state.run_id,
                state.plan.kind,
                state.target.name,
                state.target.environment,
                plan.running_version,
                plan.request.version,
                plan.request.reason,
                plan.request.requester,
                status,
                datetime.now(UTC),
                state.began_at,
                None,
                state.reached,
                None,
                None,
                state.lease.owner if state.lease else None,
                {},
                {},
            )
        return replace(
            known,
            status=status,
            error=error,
            next_action=next_action,
            summary=summary.to_dict(),
            finished_at=datetime.now(UTC),
        )
