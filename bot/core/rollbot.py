"""The core's one front door: plan, execute, cancel, recover, history.

Front ends (terminal, Slack) call these and render what comes back; none of them touches the
journal, Docker or Compose directly. The façade only composes the parts, each with one reason
to change: the threads and shutdown (workers), the rollback's use cases (rollbacks), the read
side (queries), snapshots (snapshotting), interrupted runs (recovery), drills and postmortems.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future

from bot.brain.replay import Replay
from bot.brain.snapshots import Snapshot
from bot.config import Config
from bot.core.checking import Checking
from bot.core.drill import Drill
from bot.core.foreground import PATIENCE_SECONDS, Foreground
from bot.core.outcomes import Outcome, PlannedRun, Recovery, ServiceState, TargetStatus
from bot.core.postmortems import Postmortems
from bot.core.probe_record import recorded
from bot.core.queries import Queries
from bot.core.recovery import InterruptedRuns
from bot.core.replays import Replays
from bot.core.rollbacks import Rollbacks
from bot.core.runners import Runners
from bot.core.snapshotting import Snapshotting
from bot.core.upgrades import clear_known_bad
from bot.core.workers import SHUTTING_DOWN, Workers
from bot.errors import InvalidRequest
from bot.planning.approvals import Decision, MembersOf, Verdict
from bot.planning.brain_plan import BrainChoice
from bot.planning.judgement import Judgement
from bot.planning.plan import Rehearsal, RollbackRequest, Systems
from bot.planning.previous_good import VersionChoice
from bot.ports import Health
from bot.reporting.tickets import TicketDesk
from bot.running.runner import ProgressSink
from storage import Journal, KnownBad, RunView


class Rollbot:
    def __init__(
        self,
        config: Config,
        journal: Journal,
        systems: Systems,
        health: Health,
        run_workers: int = 8,
        tickets: TicketDesk | None = None,
        patience: float = PATIENCE_SECONDS,
    ) -> None:
        self.config = config
        self.tickets = tickets
        self.foreground = Foreground()  # front ends mark the answers they owe their callers
        self._journal = journal
        self._workers = Workers(journal, self.foreground, run_workers, patience)
        probe_as = recorded(health, journal, config)  # every probe is remembered: "not ok since when"
        runners = Runners(config, journal, systems, probe_as("a run"), self._workers.stop_signal)
        self._postmortems = Postmortems(journal, tickets)
        self._queries = Queries(config, journal, systems, probe_as("status"), tickets)
        self._checking = Checking(config, systems, probe_as("check"), self._queries)
        self._rollbacks = Rollbacks(config, journal, systems, self._queries, runners, self._postmortems, self._checking)
        self._snapshotting = Snapshotting(config, journal, systems, probe_as("snapshot"), self._queries)
        self._replays = Replays(config, journal, self._queries)
        self._interrupted = InterruptedRuns(config, journal, self._queries, runners, self._postmortems)

    # --- threads and shutdown (bot/core/workers.py) ---------------------------------------------

    def background(self, work: Callable[..., object], *args: object, runs: bool = False) -> Future[object]:
        """Run `work` after the caller has been answered; `runs=True` when it may execute a rollback."""
        return self._workers.background(work, *args, runs=runs)

    @property
    def stopping(self) -> bool:
        return self._workers.stopping

    def stop_gracefully(self, timeout: float) -> list[str]:
        """SIGTERM: let runs reach the end of their step; the ids of those that did not in time."""
        return self._workers.stop_gracefully(timeout)

    def shutdown(self, wait: bool = True) -> None:
        self._workers.shutdown(wait)

    # --- the rollback (bot/core/rollbacks.py) ---------------------------------------------------

    def plan(self, request: RollbackRequest) -> PlannedRun:
        """Preflight the request and journal the plan (as `planned`, or `refused` with why)."""
        return self._rollbacks.plan(request)

    def fallback_for(self, run: RunView) -> PlannedRun | None:
        """After an upgrade whose new version failed its health check (or whose errors persist):
        the rollback to the version before it, planned now; None for any other run."""
        return self._rollbacks.fallback_for(run)

    def clear_known_bad(self, target_name: str, version: str, actor: str, reason: str) -> list[KnownBad]:
        """A person's word that a known-bad version may run again: journaled with who and why."""
        return clear_known_bad(self.config, self._journal, target_name, version, actor, reason)

    def known_bad(self, target_name: str | None = None, active_only: bool = False) -> list[KnownBad]:
        """Versions rolled back from, newest first, with their clears unless `active_only`."""
        return self._journal.known_bad_versions(target_name, active_only)

    def check(self, target_name: str) -> Judgement:
        """The runbook's "When to roll back", measured now: roll back, don't, or cannot tell."""
        return self._checking.check(target_name)

    def plan_previous_good(self, request: RollbackRequest) -> PlannedRun:
        """Plan the rollback to the previous good version of the request's target (its version is
        ignored; see bot/planning/previous_good.py); no such version is an `InvalidRequest`."""
        return self._rollbacks.plan_previous_good(request)

    def known_versions(self, target_name: str) -> tuple[list[str], VersionChoice | None]:
        """The versions a person may roll `target_name` back to, newest first, and the previous good one."""
        return self._queries.known_versions(target_name)

    def asks_about_brain(self, target_name: str, version: str) -> bool:
        """Whether a plan to `version` would have to ask whether to restore the brain (local facts only)."""
        return self._queries.asks_about_brain(target_name, version)

    def rehearsal(self, target_name: str) -> Rehearsal | None:
        """What the drills of a target (and of the targets that rehearse it) say about rolling it back."""
        return self._queries.rehearsal(target_name)

    def execute(
        self,
        planned: PlannedRun,
        actor: str,
        sink: ProgressSink | None = None,
        approver: str | None = None,
        postmortem: bool = True,
    ) -> RunView:
        """Run an approved plan on the calling thread; a drill's own runs file no postmortem."""
        return self._rollbacks.execute(planned, actor, sink, approver, postmortem)

    def may_request(self, user: str, target_name: str, members_of: MembersOf) -> Verdict:
        return self._rollbacks.may_request(user, target_name, members_of)

    def decide(
        self,
        run_id: str,
        user: str,
        decision: Decision,
        members_of: MembersOf,
        sink_for: Callable[[RunView], ProgressSink | None] = lambda run: None,
        confirms_brain_restore: bool | None = None,
        seen_on: Mapping[str, str] | None = None,
    ) -> Outcome:
        """A person's click on a plan: cancel, re-plan, or run it (see `Rollbacks.decide`)."""
        return self._rollbacks.decide(run_id, user, decision, members_of, sink_for, confirms_brain_restore, seen_on)

    def answer(
        self,
        run_id: str,
        user: str,
        choice: BrainChoice,
        members_of: MembersOf,
        seen_on: Mapping[str, str] | None = None,
    ) -> Outcome:
        """A person's answer to a plan's question: a fresh plan with it (see `Rollbacks.answer`)."""
        return self._rollbacks.answer(run_id, user, choice, members_of, seen_on)

    def expire(self, run_id: str) -> bool:
        """Close a plan nobody confirmed in time (see `Rollbacks.expire`); True when this call did."""
        return self._rollbacks.expire(run_id)

    def replan(
        self, run_id: str, user: str, members_of: MembersOf, seen_on: Mapping[str, str] | None = None
    ) -> Outcome:
        """The same request as a closed plan's, planned again for `user` (see `Rollbacks.replan`)."""
        return self._rollbacks.replan(run_id, user, members_of, seen_on)

    def cancel(self, run_id: str, actor: str, why: str) -> None:
        self._rollbacks.cancel(run_id, actor, why)

    # --- drills and postmortems ----------------------------------------------------------------

    def drill(
        self,
        target: str,
        broken: str,
        actor: str,
        sink: ProgressSink | None = None,
        rollback_sink: Callable[[RunView], ProgressSink | None] | None = None,
    ) -> RunView:
        """The runbook's drill of `target` with the deliberately broken tag `broken` (see bot/core/drill.py)."""
        if self.stopping:
            raise InvalidRequest(SHUTTING_DOWN)
        return Drill(self, self._journal, target, broken, actor, sink, rollback_sink).run()

    def file_postmortem(self, run_id: str) -> None:
        """A run that ended is owed a postmortem; one attempt now, the outbox retries the rest."""
        self._postmortems.file(run_id)

    # --- interrupted runs (bot/core/recovery.py) -----------------------------------------------

    def recover_interrupted(self) -> list[tuple[RunView, str | None]]:
        """Mark the runs of dead processes interrupted, each with the brain in place now."""
        return self._interrupted.recover_interrupted()

    def interruptions_to_report(self) -> list[tuple[RunView, ServiceState]]:
        """Interrupted runs no one has reported yet, each claimed by exactly one caller."""
        return self._interrupted.interruptions_to_report()

    def service_state(self, run: RunView) -> ServiceState:
        """The container image, its health and the brain in place, looked at now."""
        return self._interrupted.service_state(run)

    def take_up(
        self,
        run_id: str,
        user: str,
        action: Recovery,
        members_of: MembersOf | None = None,
        sink_for: Callable[[RunView], ProgressSink | None] = lambda run: None,
        seen_on: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Resume or abort an interrupted run (see `InterruptedRuns.take_up`)."""
        return self._interrupted.take_up(run_id, user, action, members_of, sink_for, seen_on)

    def brain_in_place(self, run: RunView) -> str | None:
        """For a run that began a brain swap: which brain sits at the brain's path now."""
        return self._interrupted.brain_in_place(run)

    # --- snapshots (bot/core/snapshotting.py) --------------------------------------------------

    def take_snapshot(self, target_name: str, actor: str, members_of: MembersOf | None = None) -> Snapshot:
        """A consistent copy of the live brain (see `Snapshotting.take_snapshot` for who may)."""
        return self._snapshotting.take_snapshot(target_name, actor, members_of)

    def snapshots(self, target_name: str) -> list[tuple[Snapshot, str | None]]:
        """Every snapshot of the target's brain, newest first, with what is wrong with it (or None)."""
        return self._snapshotting.snapshots(target_name)

    def replay(self, run_id: str, table: str, dry_run: bool, actor: str) -> Replay:
        """The bad window's rows of `table` from the run's forensic copy back into the live brain
        (see bot/core/replays.py); a dry run counts and names conflicts, copying nothing."""
        return self._replays.replay(run_id, table, dry_run, actor)

    # --- the read side (bot/core/queries.py) ---------------------------------------------------

    def status(self) -> list[TargetStatus]:
        return self._queries.status()

    def service_state_of(self, target_name: str) -> ServiceState:
        """The target's container image and its health, looked at now."""
        return self._queries.service_state_of(target_name)

    def remember(self, run_id: str, **context: object) -> None:
        """Keep a front end's facts about a run (where its messages are) in the journal."""
        self._journal.set_context(run_id, **context)

    def metrics(self) -> bytes:
        """rollbot's own metrics in Prometheus' text format, read from the journal now."""
        return self._queries.metrics()

    def history(self, target: str | None = None, limit: int = 20) -> list[RunView]:
        return self._queries.history(target, limit)

    def run(self, run_id: str) -> RunView:
        return self._queries.run(run_id)

    def find_run(self, run_id: str) -> RunView | None:
        return self._queries.find_run(run_id)

    def runs_in_progress(self, target: str) -> list[str]:
        """The rollbacks that hold `target`: running ones, and interrupted ones."""
        return self._queries.runs_in_progress(target)
