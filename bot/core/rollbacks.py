"""The rollback's use cases: plan it, decide on the plan (confirm, cancel, answer its question), run it.

Every plan is journaled, refused ones included, so `history` is the whole story of what was asked
and what was done. A click is checked against who may act, the plan's age and the facts now
before anything runs: a plan whose facts changed is re-made, never run as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from bot.config import Config, TargetConfig
from bot.core.checking import Checking
from bot.core.clicks import clicked_run
from bot.core.outcomes import Outcome, PlannedRun
from bot.core.postmortems import Postmortems
from bot.core.queries import Queries
from bot.core.runners import Runners
from bot.core.upgrades import fallback_request
from bot.core.workers import SHUTTING_DOWN
from bot.planning.approvals import (
    Decision,
    MembersOf,
    Verdict,
    changed_facts,
    expired,
    is_one_of,
    may_decide,
    may_request,
    plan_facts,
)
from bot.planning.brain_plan import BrainChoice
from bot.planning.plan import Plan, RollbackRequest, Systems, make_plan
from bot.planning.preflight import Check, CheckResult
from bot.planning.previous_good import VersionChoice
from bot.running.liveness import process_owner
from bot.running.runner import ProgressSink
from storage import RUNNER_KINDS, EventKind, Journal, NotStartable, RunKind, RunStatus, RunView
from storage.repository import NewRun

log = logging.getLogger(__name__)
PREVIOUS_GOOD_CHECK = "version chosen by rollbot"


class Rollbacks:
    def __init__(
        self,
        config: Config,
        journal: Journal,
        systems: Systems,
        queries: Queries,
        runners: Runners,
        postmortems: Postmortems,
        checking: Checking | None = None,
    ) -> None:
        self._checking = checking
        self._config = config
        self._journal = journal
        self._systems = systems
        self._queries = queries
        self._runners = runners
        self._postmortems = postmortems

    def plan(self, request: RollbackRequest, chosen: VersionChoice | None = None) -> PlannedRun:
        """Preflight the request and journal the plan (as `planned`, or `refused` with why).
        `chosen`: rollbot picked the version itself; the plan says which and why."""
        plan = self._make_plan(request)
        if chosen is not None:
            result = CheckResult.PASSED if chosen.seen_healthy else CheckResult.WARNING
            picked = Check(PREVIOUS_GOOD_CHECK, result, chosen.why)
            plan = replace(plan, checks=(plan.checks[0], picked, *plan.checks[1:]))
        if plan.approvable or plan.question:
            target = self._config.targets[request.target]
            plan = replace(
                plan,
                rehearsal=self._queries.rehearsal(request.target),
                kept=self._queries.kept(plan.current_image, target.keep_images),
                judgement=self._checking.for_plan(target) if self._checking else None,
            )
        record = NewRun(
            target=request.target,
            to_version=request.version,
            requester=request.requester,
            reason=request.reason,
            environment=plan.environment,
            from_version=plan.running_version,
            steps=[(step.kind.value, step.description) for step in plan.steps],
            plan=plan.to_dict(),
            kind=plan.kind,
        )
        # A question is not a refusal: the plan waits (planned) for its answer, like a confirmation.
        refusal = None if plan.question else plan.refusal
        run = self._journal.record_plan(record, actor=request.requester, refusal=refusal)
        return PlannedRun(run, plan)

    def plan_previous_good(self, request: RollbackRequest) -> PlannedRun:
        """A plan back to the previous good version; `request.version` is ignored."""
        chosen = self._queries.previous_good(request.target)
        return self.plan(replace(request, version=chosen.version), chosen)

    def fallback_for(self, run: RunView) -> PlannedRun | None:
        """After an upgrade that failed its health check (or whose errors persist): the rollback to
        the version before it, planned now, for the front end to offer; None otherwise."""
        request = fallback_request(run)
        return self.plan(request) if request is not None else None

    def _make_plan(self, request: RollbackRequest) -> Plan:
        return make_plan(
            request,
            self._config,
            self._systems,
            self._queries.runs_in_progress,
            self._journal.schema_seen,
            known_bad=self._journal.known_bad,
            last_run=self._last_run,
        )

    def _last_run(self, target: str) -> RunView | None:
        """The newest rollback or upgrade of `target` that succeeded: what the brain is now the result of."""
        done = self._journal.runs(target, limit=1, status=RunStatus.SUCCEEDED, kind=RUNNER_KINDS)
        return done[0] if done else None

    def execute(
        self,
        planned: PlannedRun,
        actor: str,
        sink: ProgressSink | None = None,
        approver: str | None = None,
        postmortem: bool = True,
    ) -> RunView:
        """Run an approved plan on the calling thread. A drill's own runs are practice: its report
        is their record, so they file no postmortem."""
        if self._runners.stopping:
            raise NotStartable(SHUTTING_DOWN)
        try:
            return self._runners.runner(actor).execute(planned.run.id, planned.plan, sink, approver or actor)
        finally:
            if postmortem:
                self._postmortems.file_if_over(planned.run.id)

    def may_request(self, user: str, target_name: str, members_of: MembersOf) -> Verdict:
        target = self._config.target(target_name)
        if target is None:
            return Verdict(True)  # preflight names the unknown target, with the known ones
        return may_request(user, target, members_of)

    def cancel(self, run_id: str, actor: str, why: str) -> None:
        self._journal.cancel(run_id, actor, why)

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
        """A person's click on a plan: check who, when and whether the facts still hold, then
        cancel, re-plan, or claim the run and execute it (on the calling thread).

        `seen_on` is where the person saw the plan, in the terms the front end remembered it
        (`remember(run_id, plan_message=...)`): a decision about a run made from a message
        that is not that run's plan is refused, so no button can act on another plan's run."""
        found = self._open_plan(run_id, seen_on)
        if isinstance(found, Outcome):
            return found
        run, target = found
        journaled = _journaled_plan(run)
        if decision is Decision.CONFIRM and _asks(journaled):
            return Outcome(refusal="this plan asks whether to restore the brain first: answer it with its buttons")
        restores = journaled is not None and journaled.restores_brain
        if decision is Decision.CONFIRM and confirms_brain_restore is not None and confirms_brain_restore != restores:
            return Outcome(
                refusal="this plan restores the brain: only its brain-restore approval starts it"
                if restores
                else "this plan does not restore the brain; confirm it with its rollback button"
            )
        verdict = may_decide(user, decision, run.requester, restores, target, members_of)
        if not verdict.allowed:
            return Outcome(refusal=verdict.reason)
        if decision is Decision.CANCEL:
            if not self._journal.cancel(run_id, user, f"cancelled by {user}"):
                return Outcome(refusal=_not_open(self._journal.run(run_id)))
            return Outcome(cancelled=True, run=self._journal.run(run_id))
        if expired(run.created_at, datetime.now(UTC), self._config.plan_ttl_minutes):
            if not self._journal.cancel(run_id, user, "expired before it was confirmed"):
                return Outcome(refusal=_not_open(self._journal.run(run_id)))
            return Outcome(refusal=self._expired())
        return self._confirm(run, user, sink_for)

    def _confirm(self, run: RunView, user: str, sink_for: Callable[[RunView], ProgressSink | None]) -> Outcome:
        """Run the plan a person confirmed, unless the facts it was made from changed since:
        then it is superseded by a fresh plan, which needs its own confirmation."""
        journaled = _journaled_plan(run)
        request = _request_of(run, journaled)
        fresh = self._make_plan(request)
        if journaled is not None:  # the evidence the person saw, and the baseline the soak keeps to
            fresh = replace(fresh, judgement=journaled.judgement)
        changed = changed_facts(plan_facts(run.plan), plan_facts(fresh))
        if fresh.refusal or changed:
            why = fresh.refusal or "the facts changed since the plan was made: " + ", ".join(changed)
            if not self._journal.cancel(run.id, user, f"superseded at confirmation: {why}"):
                return Outcome(refusal=_not_open(self._journal.run(run.id)))  # another click won meanwhile
            return Outcome(refusal=why, replanned=self.plan(request))
        self._journal.note(run.id, user, EventKind.RUN_CONFIRMED, {"by": user})
        try:
            finished = self.execute(PlannedRun(run, fresh), f"rollbot@{process_owner()}", sink_for(run), user)
        except NotStartable as error:
            now = self._journal.run(run.id)
            return Outcome(refusal=_not_open(now) if now.status is not RunStatus.PLANNED else f"not started: {error}")
        return Outcome(run=finished, follow_up=self.fallback_for(finished))

    def answer(
        self,
        run_id: str,
        user: str,
        choice: BrainChoice,
        members_of: MembersOf,
        seen_on: Mapping[str, str] | None = None,
    ) -> Outcome:
        """A person's answer to a plan's question (restore the brain or keep it): the question is
        closed and a fresh plan made with the answer, which then needs its own confirmation; a
        restore still needs an approver other than the requester, as every restore does."""
        found = self._open_plan(run_id, seen_on)
        if isinstance(found, Outcome):
            return found
        run, target = found
        journaled = _journaled_plan(run)
        if not _asks(journaled):
            return Outcome(refusal="this plan asks no question; confirm or cancel it with its buttons")
        if user != run.requester and not is_one_of(user, target.approvers, members_of):
            return Outcome(refusal=f"only the requester or an approver of {target.name} can answer this plan")
        if expired(run.created_at, datetime.now(UTC), self._config.plan_ttl_minutes):
            self._journal.cancel(run_id, user, "expired before its question was answered")
            return Outcome(refusal=self._expired())
        if not self._journal.cancel(run_id, user, f"answered by {user}: {choice.value} the brain"):
            return Outcome(refusal=_not_open(self._journal.run(run_id)))  # another click won meanwhile
        return Outcome(replanned=self.plan(replace(_request_of(run, journaled), brain=choice)))

    def expire(self, run_id: str) -> bool:
        """Close a plan nobody confirmed in time; True when this call closed it (a front end then
        shows it expired). A plan still in time, or already decided, is left alone."""
        run = self._journal.run(run_id)
        if run.status is not RunStatus.PLANNED:
            return False
        if not expired(run.created_at, datetime.now(UTC), self._config.plan_ttl_minutes):
            return False
        return bool(self._journal.cancel(run_id, "rollbot", "expired before it was confirmed"))

    def replan(
        self, run_id: str, user: str, members_of: MembersOf, seen_on: Mapping[str, str] | None = None
    ) -> Outcome:
        """ "Plan again" on a closed plan: the same request (target, version, reason, brain choice),
        asked now by `user`, who must be allowed to ask; a fresh plan that needs its own decision."""
        found = clicked_run(self._journal, self._config, run_id, "plan_message", "the plan on this message", seen_on)
        if isinstance(found, Outcome):
            return found
        run, target = found
        if run.status is RunStatus.PLANNED:
            return Outcome(refusal="this plan is still open: confirm or cancel it with its buttons")
        verdict = may_request(user, target, members_of)
        if not verdict.allowed:
            return Outcome(refusal=verdict.reason)
        request = replace(_request_of(run, _journaled_plan(run)), requester=user)
        return Outcome(replanned=self.plan(request))

    def _expired(self) -> str:
        return f"this plan expired after {self._config.plan_ttl_minutes:g} minutes; ask again with a fresh plan"

    def _open_plan(self, run_id: str, seen_on: Mapping[str, str] | None) -> tuple[RunView, TargetConfig] | Outcome:
        """The planned run a click on a plan message names, or the refusal (see `clicked_run`)."""
        found = clicked_run(self._journal, self._config, run_id, "plan_message", "the plan on this message", seen_on)
        if not isinstance(found, Outcome) and found[0].status is not RunStatus.PLANNED:
            return Outcome(refusal=_not_open(found[0]))
        return found


def _journaled_plan(run: RunView) -> Plan | None:
    """The plan as it was journaled; None for a run recorded without one (every plan rollbot
    makes carries its request, so a plan without it was not made by `plan`)."""
    return Plan.from_dict(run.plan) if run.plan.get("request") else None


def _request_of(run: RunView, journaled: Plan | None) -> RollbackRequest:
    """The request again, for a re-plan: as the run records it, with the brain choice its plan was made with."""
    brain = journaled.request.brain if journaled is not None else BrainChoice.AUTO
    asked = journaled.request.kind if journaled is not None else RunKind.ROLLBACK
    practice = journaled.request.practice if journaled is not None else False
    return RollbackRequest(run.target, run.to_version, run.requester, run.reason, brain, asked, practice)


def _asks(plan: Plan | None) -> bool:
    """The journaled plan stops at a question for a person."""
    return plan is not None and any(check.result is CheckResult.ASK for check in plan.checks)


def _not_open(run: RunView) -> str:
    if run.status is RunStatus.RUNNING:
        return f"this rollback is already running (approved by {run.approver or 'someone'})"
    if run.status is RunStatus.CANCELLED:
        return f"this plan was cancelled ({run.error})"
    return f"this plan is {run.status.value}; nothing was done"
