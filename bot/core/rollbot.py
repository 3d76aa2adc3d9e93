"""The core's one front door: plan, execute, cancel, recover, history.

Front ends (terminal, Slack) call these and render what comes back; none of them touches the
journal, Docker or Compose directly. Every plan is journaled, refused ones included, so
`history` is the whole story of what was asked and what was done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy.exc import NoResultFound

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
from bot.brain.facts import schema_version
from bot.planning.brain_plan import BrainChoice

from bot.brain.swap import brain_in_place
from bot.config import Config, TargetConfig
from bot.core.drill import Drill, rehearsal
from bot.errors import InvalidRequest, RollbotError
from bot.planning.kept_images import KeptVersions, kept_versions
from bot.reporting.metrics import render as render_metrics
from bot.core.foreground import PATIENCE_SECONDS, Foreground
from bot.planning.plan import Plan, Rehearsal, RollbackRequest, Systems, make_plan
from bot.planning.preflight import CheckResult
from bot.ports import Health
from bot.running.liveness import STALE_AFTER, owner_alive, process_owner
from bot.running.runner import ProgressSink, Runner
from bot.brain.snapshots import Snapshot, brain_lock, described_snapshots, list_snapshots, take_snapshot, verify
from bot.reporting.tickets import TicketDesk
from storage import EventKind, Journal, NotStartable, RunKind, RunStatus, RunView
from storage.runstate import HOLDING
from storage.repository import NewRun

log = logging.getLogger(__name__)
SHUTTING_DOWN = "rollbot is shutting down; click again in a minute (the next start takes it from there)"


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
        self._patience = patience
        self._journal = journal
        self._systems = systems
        self._health = health
        # Two lanes: runs (long, few, never starved) and everything else (plans, status,
        # snapshots). The second is narrow on purpose: a burst of requests queues there
        # instead of taking the CPU and the GIL from the threads that answer Slack.
        self._runs = ThreadPoolExecutor(max_workers=run_workers, thread_name_prefix="rollbot-run")
        self._work = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rollbot-work")
        self._stopping = threading.Event()
        self._run_futures: set[Future[object]] = set()
        self._futures_lock = threading.Lock()

    def background(self, work: Callable[..., object], *args: object, runs: bool = False) -> Future[object]:
        """Run `work` on the core's own threads, after a front end has answered its caller.
        `runs=True` for work that may execute a rollback (a confirmation click): it starts at
        once. Anything else waits (boundedly) until no caller is being answered, see
        bot/core/foreground.py."""
        if runs:
            future = self._runs.submit(work, *args)
            with self._futures_lock:
                self._run_futures.add(future)
            future.add_done_callback(self._forget)
        else:
            future = self._work.submit(self._when_quiet, time.monotonic() + self._patience, work, *args)
        future.add_done_callback(_log_failure)
        return future

    def _forget(self, future: Future[object]) -> None:
        with self._futures_lock:
            self._run_futures.discard(future)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop_gracefully(self, timeout: float) -> list[str]:
        """SIGTERM: take no new runs, let each run in flight reach the end of its step (the runner
        then journals it `interrupted` for the next start to resume), at most `timeout` seconds.
        Returns the ids of runs still in a step when the time ran out; those are journaled as
        interrupted here, so the next start reports them too."""
        self._stopping.set()
        with self._futures_lock:
            pending = set(self._run_futures)
        wait_for(pending, timeout=timeout)
        owner = process_owner()
        left = [run for run in self._journal.runs(limit=50, status=RunStatus.RUNNING) if run.owner == owner]
        actor = f"rollbot@{owner}"
        for run in self._journal.mark_interrupted(lambda who: who != owner, actor=actor):
            log.warning("run %s was still in step %s at shutdown; it is journaled as interrupted", run.id, run.current_step)
        self._work.shutdown(wait=False, cancel_futures=True)
        return [run.id for run in left]

    def _when_quiet(self, deadline: float, work: Callable[..., object], *args: object) -> object:
        """The wait counts from submission, so under a long stream of requests queued work is
        delayed by the patience at most, never by the patience once per item."""
        self.foreground.wait_for_quiet(deadline - time.monotonic())
        return work(*args)

    def shutdown(self, wait: bool = True) -> None:
        self._work.shutdown(wait=wait)
        self._runs.shutdown(wait=wait)

    def _runner(self, actor: str) -> Runner:
        return Runner(self.config, self._journal, self._systems, self._health, actor, process_owner(),
                      stopping=self._stopping, on_healthy=lambda target, version: self._saw_healthy(target, version, "run"))

    def _saw_healthy(self, target: TargetConfig, version: str | None, source: str, schema: int | None = None) -> None:
        """Journal that `version` answered healthy on the brain's schema (read now, or `schema` of a
        copy taken at that moment): the next rollback to it knows whether the brain must go back.
        Best effort: a record never fails what a person asked for."""
        if target.brain is None or not version:
            return
        try:
            if schema is None:
                schema = schema_version(target.brain.path, target.brain.schema_query)
            self._journal.saw_schema(target.name, version, schema, source)
        except Exception as error:  # noqa: BLE001 - a missing record only means asking later
            log.warning("could not record the brain schema %s ran with: %s", version, error)

    def plan(self, request: RollbackRequest) -> PlannedRun:
        """Preflight the request and journal the plan (as `planned`, or `refused` with why)."""
        plan = make_plan(request, self.config, self._systems, self.runs_in_progress, self._journal.schema_seen)
        if plan.approvable or plan.question:
            target = self.config.targets[request.target]
            plan = replace(plan, rehearsal=self.rehearsal(request.target),
                           kept=self._kept(plan.current_image, target.keep_images))
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
        # A question is not a refusal: the plan waits (planned) for its answer, like a confirmation.
        refusal = None if plan.question else plan.refusal
        run = self._journal.record_plan(record, actor=request.requester, refusal=refusal)
        return PlannedRun(run, plan)

    def _kept(self, running_image: str | None, keep: int) -> KeptVersions | None:
        """The earlier versions still available; looking is best effort and never fails a plan."""
        if not running_image:
            return None
        try:
            return kept_versions(self._systems.docker, running_image, keep)
        except RollbotError as error:
            log.warning("could not count the earlier versions of %s: %s", running_image, error)
            return None

    def rehearsal(self, target_name: str) -> Rehearsal | None:
        """What the drills of a target (and of the targets that rehearse it) say about rolling it back."""
        stand_ins = [t.name for t in self.config.targets.values() if t.rehearses == target_name]
        return rehearsal(self._journal, target_name, stand_ins)

    def execute(
        self, planned: PlannedRun, actor: str, sink: ProgressSink | None = None, approver: str | None = None,
        postmortem: bool = True,
    ) -> RunView:
        """Run an approved plan on the calling thread. A drill's own runs are practice: its report
        is their record, so they file no postmortem."""
        if self.stopping:
            raise NotStartable(SHUTTING_DOWN)
        try:
            return self._runner(actor).execute(planned.run.id, planned.plan, sink, approver or actor)
        finally:
            if postmortem:
                self._postmortem_if_over(planned.run.id)

    def drill(
        self, target: str, broken: str, actor: str, sink: ProgressSink | None = None,
        rollback_sink: Callable[[RunView], ProgressSink | None] | None = None,
    ) -> RunView:
        """The runbook's drill of `target` with the deliberately broken tag `broken` (see bot/core/drill.py)."""
        if self.stopping:
            raise InvalidRequest(SHUTTING_DOWN)
        return Drill(self, self._journal, target, broken, actor, sink, rollback_sink).run()

    def _postmortem_if_over(self, run_id: str) -> None:
        """An interrupted run is not over: it is resumed or aborted, and then it is owed one."""
        try:
            status = self._journal.run(run_id).status
        except Exception:  # noqa: BLE001 - the run's own last message said where the service is
            log.exception("cannot read run %s back from the journal; its postmortem waits", run_id)
            return
        if status.is_final and status is not RunStatus.INTERRUPTED:
            self.file_postmortem(run_id)

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
        found = self._open_plan(run_id, seen_on)
        if isinstance(found, Outcome):
            return found
        run, target = found
        if decision is Decision.CONFIRM and _asks(run):
            return Outcome(refusal="this plan asks whether to restore the brain first: answer it with its buttons")
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
        fresh = make_plan(request, self.config, self._systems, self.runs_in_progress, self._journal.schema_seen)
        changed = changed_facts(plan_facts(run.plan), plan_facts(fresh))
        if fresh.refusal or changed:
            why = fresh.refusal or "the facts changed since the plan was made: " + ", ".join(changed)
            if not self._journal.cancel(run_id, user, f"superseded at confirmation: {why}"):
                return Outcome(refusal=_not_open(self._journal.run(run_id)))  # another click won meanwhile
            return Outcome(refusal=why, replanned=self.plan(request))
        self._journal.note(run_id, user, EventKind.RUN_CONFIRMED, {"by": user})
        try:
            finished = self.execute(PlannedRun(run, fresh), f"rollbot@{process_owner()}", sink_for(run), user)
        except NotStartable as error:
            now = self._journal.run(run_id)
            return Outcome(refusal=_not_open(now) if now.status is not RunStatus.PLANNED else f"not started: {error}")
        return Outcome(run=finished)

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
        if not _asks(run):
            return Outcome(refusal="this plan asks no question; confirm or cancel it with its buttons")
        if user != run.requester and not is_one_of(user, target.approvers, members_of):
            return Outcome(refusal=f"only the requester or an approver of {target.name} can answer this plan")
        if expired(run.created_at, datetime.now(UTC), self.config.plan_ttl_minutes):
            self._journal.cancel(run_id, user, "expired before its question was answered")
            return Outcome(refusal=f"this plan expired after {self.config.plan_ttl_minutes:g} minutes; "
                                   f"ask again with a fresh plan")
        if not self._journal.cancel(run_id, user, f"answered by {user}: {choice.value} the brain"):
            return Outcome(refusal=_not_open(self._journal.run(run_id)))  # another click won meanwhile
        return Outcome(replanned=self.plan(replace(_request_of(run), brain=choice)))

    def _open_plan(self, run_id: str, seen_on: Mapping[str, str] | None) -> tuple[RunView, TargetConfig] | Outcome:
        """The planned run a click on a plan message names, or the refusal (see `_clicked_run`)."""
        found = self._clicked_run(run_id, "plan_message", "the plan on this message", seen_on)
        if not isinstance(found, Outcome) and found[0].status is not RunStatus.PLANNED:
            return Outcome(refusal=_not_open(found[0]))
        return found

    def _clicked_run(
        self, run_id: str, remembered_as: str, what: str, seen_on: Mapping[str, str] | None
    ) -> tuple[RunView, TargetConfig] | Outcome:
        """The run a click names, and its target; or the refusal when the run is unknown, is not
        `what` the clicked message shows, or its target is no longer configured."""
        try:
            run = self._journal.run(run_id)
        except NoResultFound:
            return Outcome(refusal=f"run {_quoted(run_id)} is not known to rollbot; nothing was done")
        if _seen_elsewhere(run, remembered_as, seen_on):
            return Outcome(refusal=f"run {run.id} ({run.target} → {run.to_version}) is not {what}; nothing was done")
        target = self.config.target(run.target)
        if target is None:
            return Outcome(refusal=f"target {run.target} is no longer configured")
        return run, target

    def status(self) -> list[TargetStatus]:
        return [self._target_status(target) for target in self.config.targets.values()]

    def _target_status(self, target: TargetConfig) -> TargetStatus:
        container_id = self._systems.compose_for(target).container_id(target.service)
        container = self._systems.docker.container(container_id) if container_id else None
        health = self._health.wait_until_healthy(target.health_url, timeout=2)
        if health.ok and container is not None and container.running:
            self._saw_healthy(target, container.tag, "status")
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
            kept=self._kept(container.image if container else None, target.keep_images),
        )

    def cancel(self, run_id: str, actor: str, why: str) -> None:
        self._journal.cancel(run_id, actor, why)

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
            if run.kind != "rollback" or self.config.target(run.target) is None:
                continue  # a drill that died is in `history`; its runs are reported on their own
            if not self._journal.claim_report(run.id):
                continue
            claimed.append((self._journal.run(run.id), self.service_state(run)))
        return claimed

    def service_state(self, run: RunView) -> ServiceState:
        """The container image, its health and the brain in place, looked at now."""
        state = self.service_state_of(run.target)
        return ServiceState(state.image, state.container_state, state.healthy, state.health, self.brain_in_place(run))

    def service_state_of(self, target_name: str) -> ServiceState:
        """The target's container image and its health, looked at now."""
        target = self.config.targets[target_name]
        try:
            container_id = self._systems.compose_for(target).container_id(target.service)
            container = self._systems.docker.container(container_id) if container_id else None
        except Exception as error:  # noqa: BLE001 - a report must go out even when Docker does not answer
            log.warning("could not look at %s's container: %s", target.name, error)
            container = None
        health = self._health.wait_until_healthy(target.health_url, timeout=2)
        return ServiceState(
            image=container.image if container else None,
            container_state=container.state if container else "no container",
            healthy=health.ok,
            health=health.describe(),
        )

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
        found = self._clicked_run(run_id, "interruption_message", "the interrupted run reported on this message",
                                  seen_on)
        if isinstance(found, Outcome):
            return found
        run, target = found
        if members_of is not None and not is_one_of(user, target.approvers, members_of):
            return Outcome(refusal=f"only an approver of {target.name} can {action} an interrupted run")
        if run.status is not RunStatus.INTERRUPTED:
            return Outcome(refusal=_not_interrupted(run))
        if run.kind != "rollback":
            return Outcome(refusal=f"run {run.id} is a {run.kind}; it is not resumed: start a new one")
        if self.stopping:
            return Outcome(refusal=SHUTTING_DOWN)
        runner = self._runner(f"rollbot@{process_owner()}")
        try:
            if action is Recovery.RESUME:
                finished = runner.resume(run, user, sink_for(run))
            else:
                finished = runner.abort(run, user, sink_for(run))
        except NotStartable as error:
            now = self._journal.run(run_id)
            return Outcome(refusal=_not_interrupted(now) if now.status is not RunStatus.INTERRUPTED else str(error))
        finally:
            self._postmortem_if_over(run_id)
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

    def take_snapshot(self, target_name: str, actor: str, members_of: MembersOf | None = None) -> Snapshot:
        """A consistent copy of the live brain, taken while the Engine keeps running.

        From Slack `members_of` is given and only the target's requesters may take one (copies of
        the production brain fill its disk); at the terminal, whoever can run rollbot may. The
        brain's lock is taken before looking for a run of the target, so a snapshot and a restore
        never overlap (see bot/brain/snapshots.py). The image tag is recorded only from a running
        container: a stopped one says nothing about what wrote the brain."""
        target = self._brain_target(target_name)
        assert target.brain is not None
        if members_of is not None:
            verdict = may_request(actor, target, members_of)
            if not verdict.allowed:
                raise InvalidRequest(verdict.reason)
        with brain_lock(target.brain.path, f"a snapshot of {target.name}'s brain asked by {actor}"):
            busy = self.runs_in_progress(target.name)
            if busy:
                raise InvalidRequest(f"run {busy[0]} of {target.name} is in progress; take the snapshot after it ends")
            container_id = self._systems.compose_for(target).container_id(target.service)
            container = self._systems.docker.container(container_id) if container_id else None
            running = container if container is not None and container.running else None
            snapshot = take_snapshot(target.brain, running.tag if running else None)
        self._journal.note(None, actor, EventKind.SNAPSHOT_TAKEN, {"target": target.name, **snapshot.to_dict()})
        if running is not None and snapshot.schema_version is not None:
            if self._health.wait_until_healthy(target.health_url, timeout=2).ok:
                self._saw_healthy(target, running.tag, "snapshot", snapshot.schema_version)
        return snapshot

    def snapshots(self, target_name: str) -> list[tuple[Snapshot, str | None]]:
        """Every snapshot of the target's brain, newest first, with what is wrong with it (or None):
        the file's own problem first, else why its sidecar was not believed."""
        target = self._brain_target(target_name)
        assert target.brain is not None
        return [(snapshot, verify(snapshot) or disbelief) for snapshot, disbelief in described_snapshots(target.brain)]

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

    def metrics(self) -> bytes:
        """rollbot's own metrics in Prometheus' text format, read from the journal now."""
        return render_metrics(self.config, self._journal, self.tickets.outbox if self.tickets else None)

    def history(self, target: str | None = None, limit: int = 20) -> list[RunView]:
        return self._journal.runs(target, limit)

    def run(self, run_id: str) -> RunView:
        return self._journal.run(run_id)

    def find_run(self, run_id: str) -> RunView | None:
        try:
            return self._journal.run(run_id)
        except NoResultFound:
            return None

    def runs_in_progress(self, target: str) -> list[str]:
        """The rollbacks that hold `target`: running ones, and interrupted ones, which left the
        service half-way and hold it until they are resumed or aborted."""
        return [run.id for status in HOLDING
                for run in self._journal.runs(target, limit=10, status=status, kind=RunKind.ROLLBACK)]


def _request_of(run: RunView) -> RollbackRequest:
    asked = run.plan.get("request") or {}
    return RollbackRequest(
        run.target, run.to_version, run.requester, run.reason, BrainChoice(asked.get("brain", BrainChoice.AUTO))
    )


def _asks(run: RunView) -> bool:
    """The journaled plan stops at a question for a person."""
    return any(check.get("result") == CheckResult.ASK for check in run.plan.get("checks", []))


def _seen_elsewhere(run: RunView, remembered_as: str, seen_on: Mapping[str, str] | None) -> bool:
    """A front end says where a person acted (`seen_on`) and remembered where it showed the run
    (`run.context[remembered_as]`); True when both are known and differ."""
    shown_on = run.context.get(remembered_as)
    return seen_on is not None and shown_on is not None and dict(seen_on) != shown_on


def _quoted(text: str, limit: int = 40) -> str:
    """Text from a request, shown briefly and unambiguously (repr) in a refusal."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _not_open(run: RunView) -> str:
    if run.status is RunStatus.RUNNING:
        return f"this rollback is already running (approved by {run.approver or 'someone'})"
    if run.status is RunStatus.CANCELLED:
        return f"this plan was cancelled ({run.error})"
    return f"this plan is {run.status.value}; nothing was done"


def _not_interrupted(run: RunView) -> str:
    if run.status is RunStatus.RUNNING:
        return f"run {run.id} is running (owned by {run.owner}); nothing to resume"
    if run.status is RunStatus.PLANNED:
        return f"run {run.id} has not started; confirm or cancel its plan instead"
    return f"run {run.id} is {run.status.value}, not interrupted; nothing was done"


def _log_failure(future: Future[object]) -> None:
    error = future.exception()
    if error is not None:
        log.error("background work failed", exc_info=error)
