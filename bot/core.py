"""The core's one front door: plan, execute, cancel, recover, history.

Front ends (terminal, Slack) call these and render what comes back; none of them touches the
journal, Docker or Compose directly. Every plan is journaled, refused ones included, so
`history` is the whole story of what was asked and what was done.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import NoResultFound

from bot.approvals import Decision, MembersOf, Verdict, changed_facts, expired, may_decide, may_request, plan_facts
from bot.brain_plan import BrainChoice

from bot.brain_swap import brain_in_place
from bot.config import Config, TargetConfig
from bot.errors import InvalidRequest
from bot.health import Health
from bot.plan import Plan, RollbackRequest, Systems, make_plan
from bot.runner import ProgressSink, Runner

log = logging.getLogger(__name__)
from bot.snapshots import Snapshot, list_snapshots, take_snapshot, verify
from bot.tickets import TicketDesk
from storage import Journal, NotStartable, RunStatus, RunView
from storage.repository import NewRun


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


class Rollbot:
    def __init__(
        self,
        config: Config,
        journal: Journal,
        systems: Systems,
        health: Health,
        run_workers: int = 8,
        tickets: TicketDesk | None = None,
    ) -> None:
        self.config = config
        self.tickets = tickets
        self._journal = journal
        self._systems = systems
        self._health = health
        # Two lanes: runs (long, few, never starved) and everything else (plans, status,
        # snapshots). The second is narrow on purpose: a burst of requests queues there
        # instead of taking the CPU and the GIL from the threads that answer Slack.
        self._runs = ThreadPoolExecutor(max_workers=run_workers, thread_name_prefix="rollbot-run")
        self._work = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rollbot-work")

    def background(self, work: Callable[..., object], *args: object, runs: bool = False) -> Future[object]:
        """Run `work` on the core's own threads, after a front end has answered its caller.
        `runs=True` for work that may execute a rollback (a confirmation click)."""
        future = (self._runs if runs else self._work).submit(work, *args)
        future.add_done_callback(_log_failure)
        return future

    def shutdown(self, wait: bool = True) -> None:
        self._work.shutdown(wait=wait)
        self._runs.shutdown(wait=wait)

    def plan(self, request: RollbackRequest) -> PlannedRun:
        """Preflight the request and journal the plan (as `planned`, or `refused` with why)."""
        plan = make_plan(request, self.config, self._systems, self.runs_in_progress)
        record = NewRun(
            target=request.target,
            to_version=request.version,
            requester=request.requester,
            reason=request.reason,
            environment=plan.environment,
            from_version=plan.running_version,
            steps=[(step.kind.value, step.description) for step in plan.steps],
            plan=plan.to_dict(),
        )
        run = self._journal.record_plan(record, actor=request.requester, refusal=plan.refusal)
        return PlannedRun(run, plan)

    def execute(
        self, planned: PlannedRun, actor: str, sink: ProgressSink | None = None, approver: str | None = None
    ) -> RunView:
        runner = Runner(self.config, self._journal, self._systems, self._health, actor, process_owner())
        try:
            return runner.execute(planned.run.id, planned.plan, sink, approver or actor)
        finally:
            if self._journal.run(planned.run.id).status.is_final:
                self.file_postmortem(planned.run.id)

    def file_postmortem(self, run_id: str) -> None:
        """A run that ended is owed a postmortem; one attempt now, the outbox retries the rest."""
        if self.tickets is None:
            return
        try:
            self.tickets.owe(run_id)
            self.tickets.process()
        except Exception:  # noqa: BLE001 - a ticket never fails a rollback
            log.exception("filing the postmortem of run %s failed; it stays in the outbox", run_id)

    def may_request(self, user: str, target_name: str, members_of: MembersOf) -> Verdict:
        target = self.config.target(target_name)
        if target is None:
            return Verdict(True)  # preflight names the unknown target, with the known ones
        return may_request(user, target, members_of)

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
        try:
            run = self._journal.run(run_id)
        except NoResultFound:
            return Outcome(refusal=f"run {_quoted(run_id)} is not known to rollbot; nothing was done")
        shown_on = run.context.get("plan_message")
        if seen_on is not None and shown_on is not None and dict(seen_on) != shown_on:
            return Outcome(refusal=f"run {run.id} ({run.target} → {run.to_version}) is not the plan on this "
                                   "message; nothing was done")
        target = self.config.target(run.target)
        if target is None:
            return Outcome(refusal=f"target {run.target} is no longer configured")
        if run.status is not RunStatus.PLANNED:
            return Outcome(refusal=_not_open(run))
        restores = bool((run.plan.get("brain") or {}).get("restore"))
        if decision is Decision.CONFIRM and confirms_brain_restore is not None and confirms_brain_restore != restores:
            return Outcome(refusal="this plan restores the brain: only its brain-restore approval starts it" if restores
                           else "this plan does not restore the brain; confirm it with its rollback button")
        verdict = may_decide(user, decision, run.requester, restores, target, members_of)
        if not verdict.allowed:
            return Outcome(refusal=verdict.reason)
        if decision is Decision.CANCEL:
            if not self._journal.cancel(run_id, user, f"cancelled by {user}"):
                return Outcome(refusal=_not_open(self._journal.run(run_id)))
            return Outcome(cancelled=True, run=self._journal.run(run_id))
        if expired(run.created_at, datetime.now(UTC), self.config.plan_ttl_minutes):
            if not self._journal.cancel(run_id, user, "expired before it was confirmed"):
                return Outcome(refusal=_not_open(self._journal.run(run_id)))
            return Outcome(refusal=f"this plan expired after {self.config.plan_ttl_minutes:g} minutes; "
                                   f"ask again with a fresh plan")
        request = _request_of(run)
        fresh = make_plan(request, self.config, self._systems, self.runs_in_progress)
        changed = changed_facts(plan_facts(run.plan), plan_facts(fresh))
        if fresh.refusal or changed:
            why = fresh.refusal or "the facts changed since the plan was made: " + ", ".join(changed)
            if not self._journal.cancel(run_id, user, f"superseded at confirmation: {why}"):
                return Outcome(refusal=_not_open(self._journal.run(run_id)))  # another click won meanwhile
            return Outcome(refusal=why, replanned=self.plan(request))
        self._journal.note(run_id, user, f"run.{decision}ed", {"by": user})
        try:
            finished = self.execute(PlannedRun(run, fresh), f"rollbot@{process_owner()}", sink_for(run), user)
        except NotStartable as error:
            now = self._journal.run(run_id)
            return Outcome(refusal=_not_open(now) if now.status is not RunStatus.PLANNED else f"not started: {error}")
        return Outcome(run=finished)

    def status(self) -> list[TargetStatus]:
        return [self._target_status(target) for target in self.config.targets.values()]

    def _target_status(self, target: TargetConfig) -> TargetStatus:
        container_id = self._systems.compose_for(target).container_id(target.service)
        container = self._systems.docker.container(container_id) if container_id else None
        health = self._health.wait_until_healthy(target.health_url, timeout=2)
        snapshots = list_snapshots(target.brain) if target.brain else []
        busy = self.runs_in_progress(target.name)
        return TargetStatus(
            name=target.name,
            environment=target.environment,
            running_version=container.tag if container else None,
            container_state=container.state if container else "no container",
            healthy=health.ok,
            health=health.describe(),
            newest_snapshot=snapshots[0] if snapshots else None,
            run_in_progress=busy[0] if busy else None,
        )

    def cancel(self, run_id: str, actor: str, why: str) -> None:
        self._journal.cancel(run_id, actor, why)

    def recover_interrupted(self) -> list[tuple[RunView, str | None]]:
        """Runs whose process died mid-way are marked interrupted, with the step they were in
        and, for brain restores, which brain file is in place now (journaled too)."""
        actor = f"rollbot@{process_owner()}"
        found = []
        for run in self._journal.mark_interrupted(owner_alive, actor=actor):
            brain = self.brain_in_place(run)
            if brain:
                self._journal.note(run.id, actor, "brain.inspected", {"in_place": brain})
            found.append((run, brain))
            self.file_postmortem(run.id)
        return found

    def brain_in_place(self, run: RunView) -> str | None:
        """For a run that began a brain swap: which brain sits at the brain's path now."""
        swap = next((e for e in self._journal.run(run.id).events if e.kind == "brain.swap"), None)
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

    def take_snapshot(self, target_name: str, actor: str) -> Snapshot:
        """A consistent copy of the live brain, taken while the Engine keeps running."""
        target = self._brain_target(target_name)
        assert target.brain is not None
        container_id = self._systems.compose_for(target).container_id(target.service)
        container = self._systems.docker.container(container_id) if container_id else None
        snapshot = take_snapshot(target.brain, container.tag if container else None)
        self._journal.note(None, actor, "snapshot.taken", {"target": target.name, **snapshot.to_dict()})
        return snapshot

    def snapshots(self, target_name: str) -> list[tuple[Snapshot, str | None]]:
        """Every snapshot of the target's brain, newest first, with what is wrong with it (or None)."""
        target = self._brain_target(target_name)
        assert target.brain is not None
        return [(snapshot, verify(snapshot)) for snapshot in list_snapshots(target.brain)]

    def _brain_target(self, name: str) -> TargetConfig:
        target = self.config.target(name)
        if target is None:
            raise InvalidRequest(f"unknown target {name!r}; configured targets: {', '.join(sorted(self.config.targets))}")
        if target.brain is None:
            raise InvalidRequest(f"target {name} has no brain configured (targets.{name}.brain)")
        return target

    def remember(self, run_id: str, **context: object) -> None:
        """Keep a front end's facts about a run (where its messages are) in the journal."""
        self._journal.set_context(run_id, **context)

    def history(self, target: str | None = None, limit: int = 20) -> list[RunView]:
        return self._journal.runs(target, limit)

    def run(self, run_id: str) -> RunView:
        return self._journal.run(run_id)

    def runs_in_progress(self, target: str) -> list[str]:
        return [run.id for run in self._journal.runs(target, limit=10, status=RunStatus.RUNNING)]


def _request_of(run: RunView) -> RollbackRequest:
    asked = run.plan.get("request") or {}
    return RollbackRequest(
        run.target, run.to_version, run.requester, run.reason, BrainChoice(asked.get("brain", BrainChoice.AUTO))
    )


def _quoted(text: str, limit: int = 40) -> str:
    """Text from a request, shown briefly and unambiguously (repr) in a refusal."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _not_open(run: RunView) -> str:
    if run.status is RunStatus.RUNNING:
        return f"this rollback is already running (approved by {run.approver or 'someone'})"
    if run.status is RunStatus.CANCELLED:
        return f"this plan was cancelled ({run.error})"
    return f"this plan is {run.status.value}; nothing was done"


def _log_failure(future: Future[object]) -> None:
    error = future.exception()
    if error is not None:
        log.error("background work failed", exc_info=error)


def process_owner() -> str:
    """Who is running a run: `host:pid`, enough to tell later whether that process still lives."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the process named by `owner` exists. A process on another host is assumed alive."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
