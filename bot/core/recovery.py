"""Runs a dead process left half-way: found at start, reported once, resumed or aborted by a person.

The journal says which step a run was in; what the service looks like now (its container, its
health, which brain file sits in place) is looked at fresh, so whoever decides sees both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from bot.brain.swap import brain_in_place
from bot.config import Config
from bot.core.clicks import clicked_run
from bot.core.outcomes import Outcome, Recovery, ServiceState
from bot.core.postmortems import Postmortems
from bot.core.queries import Queries
from bot.core.runners import Runners
from bot.core.workers import SHUTTING_DOWN
from bot.planning.approvals import MembersOf, is_one_of
from bot.running.liveness import STALE_AFTER, owner_alive, process_owner
from bot.running.runner import ProgressSink
from storage import RUNNER_KINDS, EventKind, Journal, NotStartable, RunStatus, RunView


class InterruptedRuns:
    def __init__(
        self, config: Config, journal: Journal, queries: Queries, runners: Runners, postmortems: Postmortems
    ) -> None:
        self._config = config
        self._journal = journal
        self._queries = queries
        self._runners = runners
        self._postmortems = postmortems

    def recover_interrupted(self) -> list[tuple[RunView, str | None]]:
        """Runs whose process died mid-way (its pid is gone, or its heartbeat stopped) are marked
        interrupted, with the step they were in and, for brain restores, which brain file is in
        place now (journaled too). They wait for a person to resume or abort them."""
        actor = f"rollbot@{process_owner()}"
        found = []
        for run in self._journal.mark_interrupted(owner_alive, actor=actor, stale_after=STALE_AFTER):
            brain = self.brain_in_place(run)
            if brain:
                self._journal.note(run.id, actor, EventKind.BRAIN_INSPECTED, {"in_place": brain})
            found.append((run, brain))
        return found

    def interruptions_to_report(self) -> list[tuple[RunView, ServiceState]]:
        """Interrupted runs no one has reported yet, each claimed by exactly one caller (of several
        replicas, one posts), with the state of their service now."""
        claimed = []
        for run in self._journal.unreported_interruptions():
            if run.kind not in RUNNER_KINDS or self._config.target(run.target) is None:
                continue  # a drill that died is in `history`; its runs are reported on their own
            if not self._journal.claim_report(run.id):
                continue
            claimed.append((self._journal.run(run.id), self.service_state(run)))
        return claimed

    def service_state(self, run: RunView) -> ServiceState:
        """The container image, its health and the brain in place, looked at now."""
        state = self._queries.service_state_of(run.target)
        return ServiceState(state.image, state.container_state, state.healthy, state.health, self.brain_in_place(run))

    def take_up(
        self,
        run_id: str,
        user: str,
        action: Recovery,
        members_of: MembersOf | None = None,
        sink_for: Callable[[RunView], ProgressSink | None] = lambda run: None,
        seen_on: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Resume or abort an interrupted run (on the calling thread). From Slack `members_of` is
        given and only an approver of the target may do it; at the terminal, whoever can run
        rollbot on the host may. `seen_on`, as for `decide`: a click on a message that is not
        the run's interruption report is refused."""
        found = clicked_run(
            self._journal,
            self._config,
            run_id,
            "interruption_message",
            "the interrupted run reported on this message",
            seen_on,
        )
        if isinstance(found, Outcome):
            return found
        run, target = found
        if members_of is not None and not is_one_of(user, target.approvers, members_of):
            return Outcome(refusal=f"only an approver of {target.name} can {action} an interrupted run")
        if run.status is not RunStatus.INTERRUPTED:
            return Outcome(refusal=_not_interrupted(run))
        if run.kind not in RUNNER_KINDS:
            return Outcome(refusal=f"run {run.id} is a {run.kind}; it is not resumed: start a new one")
        if self._runners.stopping:
            return Outcome(refusal=SHUTTING_DOWN)
        return self._go_on(run, user, action, sink_for)

    def _go_on(
        self, run: RunView, user: str, action: Recovery, sink_for: Callable[[RunView], ProgressSink | None]
    ) -> Outcome:
        """Resume or abort, on the calling thread; a click that lost the race to another is refused."""
        runner = self._runners.runner(f"rollbot@{process_owner()}")
        try:
            if action is Recovery.RESUME:
                finished = runner.resume(run, user, sink_for(run))
            else:
                finished = runner.abort(run, user, sink_for(run))
        except NotStartable as error:
            now = self._journal.run(run.id)
            return Outcome(refusal=_not_interrupted(now) if now.status is not RunStatus.INTERRUPTED else str(error))
        finally:
            self._postmortems.file_if_over(run.id)
        return Outcome(run=finished)

    def brain_in_place(self, run: RunView) -> str | None:
        """For a run that began a brain swap: which brain sits at the brain's path now."""
        swap = next((e for e in self._journal.run(run.id).events if e.kind == EventKind.BRAIN_SWAP), None)
        if swap is None:
            return None
        brain = Path(swap.details["brain"])
        which = brain_in_place(brain, swap.details["original_inode"], swap.details["staged_inode"])
        return {
            "original": f"the original brain is in place at {brain} (the swap did not happen)",
            "snapshot": f"the restored snapshot is in place at {brain}; the original is in {swap.details['forensic_dir']}",
            "missing": f"NO brain file at {brain}: the original is in {swap.details['forensic_dir']}",
            "other": f"an unknown file is at {brain}; the original is in {swap.details['forensic_dir']}",
        }[which]


def _not_interrupted(run: RunView) -> str:
    if run.status is RunStatus.RUNNING:
        return f"run {run.id} is running (owned by {run.owner}); nothing to resume"
    if run.status is RunStatus.PLANNED:
        return f"run {run.id} has not started; confirm or cancel its plan instead"
    return f"run {run.id} is {run.status.value}, not interrupted; nothing was done"
