"""How the end of a run is told: where the service is, what a person should do next, and the
summary's facts. Words only, no side effects: compensation decides and acts, this says what came of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.adapters.compose import compose_command
from bot.brain.external import destructive_calls
from bot.brain.facts import BrainError, loss_report
from bot.brain.swap import brain_in_place
from bot.config import TargetConfig
from bot.planning.plan import Plan, StepKind
from bot.running.state import BEFORE_STOP, RunState, snapshot_in_place
from bot.running.summary import RunSummary


@dataclass(frozen=True)
class BrainBack:
    """Whether the original brain is in place again after a failed restore, said in a sentence."""

    ok: bool
    text: str


@dataclass(frozen=True)
class Started:
    """What starting the previous version again did: file put back, container running, or why not."""

    compose_put_back: bool
    running: bool
    problem: str | None = None


@dataclass(frozen=True)
class Recovery:
    """How a failed run left the service after rollbot put it back on its feet, or tried to."""

    where: str
    next_action: str
    done: str


def summarise(
    state: RunState,
    seconds: float,
    healthy: bool,
    service_state: str | None = None,
    failed_step: StepKind | None = None,
    after_failure: str | None = None,
) -> RunSummary:
    return replace(
        _brain_facts(state),
        new_version=state.plan.request.version,
        previous_version=state.plan.running_version,
        healthy=healthy,
        seconds=round(seconds, 2),
        downtime_seconds=round(state.downtime, 2) if state.downtime is not None else None,
        log_file=str(state.log_file) if state.log_file else None,
        health=state.health.describe() if state.health else None,
        service_state=service_state,
        failed_step=str(failed_step) if failed_step is not None else None,
        after_failure=after_failure,
        recovery=state.soak.text if state.soak and state.soak.recovered else None,
        errors_persist=state.soak.text if state.soak and not state.soak.recovered else None,
        **_external_facts(state),
    )


def _external_facts(state: RunState) -> dict[str, Any]:
    """The bad window's destructive calls, counted again from the forensic copy once the brain was
    swapped (calls made between the plan and the drain-stop are in it too), else as planned."""
    planned, config = state.plan.external, state.target.brain.external_calls if state.target.brain else None
    if planned is None or config is None:
        return {}
    counted = planned
    if state.swapped is not None and planned.problem is None:
        since = datetime.fromisoformat(planned.since) if planned.since else None
        recounted = destructive_calls(state.swapped.forensic_brain, config, since)
        counted = recounted if recounted.problem is None else planned
    if counted.problem is not None:
        return {"external_detail": counted.headline()}
    return {
        "external_effects": counted.count,
        "external_detail": f"{counted.by_tool()} since {counted.since_shown}",
    }


def _brain_facts(state: RunState) -> RunSummary:
    """What the forensic copy holds, counted from the files at the end of the run: rows written
    between the plan and the drain-stop are in it too, and the count must say so."""
    brain = state.plan.brain
    if brain is None or not brain.restore or brain.snapshot is None:
        return RunSummary(brain="not restored")
    facts = RunSummary(
        brain=f"restored from {brain.snapshot.path.name}" if snapshot_in_place(state) else "not restored",
        snapshot=str(brain.snapshot.path),
        forensic_copy=str(state.swapped.forensic_brain) if state.swapped else None,
    )
    if state.swapped is None:
        return facts
    try:
        held = loss_report(state.swapped.forensic_brain, brain.snapshot.path)
    except BrainError as error:
        return replace(facts, forensic_holds=f"could not be counted: {error}", rows_rolled_back=None)
    return replace(facts, forensic_holds=held.describe(), rows_rolled_back=held.total_rows)


def with_brain(state: RunState, where: str) -> str:
    """`where` plus which brain is in place, once a swap has begun: the one fact a person
    must not guess after an interruption."""
    brain = state.plan.brain
    if brain is None or state.swapped is None:
        return where
    which = brain_in_place(brain.path, state.swapped.original_inode, state.swapped.staged_inode)
    return (
        where + f"; the {'restored snapshot' if which == 'snapshot' else which + ' brain'} is at {brain.path} "
        f"and the original brain is kept in {state.swapped.forensic_dir}"
    )


def describe_recovery(state: RunState, kind: StepKind, brain: BrainBack | None, started: Started) -> Recovery:
    """The service state and next command after the previous version was started again, or not."""
    target, plan = state.target, state.plan
    service, old, new = target.service, plan.running_version, plan.request.version
    compose = compose_command(target.compose_file, target.compose_files)
    retry = f"rollbot rollback {target.name} {new}"
    why = {StepKind.START: f"{new} did not start", StepKind.SWAP_BRAIN: "the brain swap failed"}.get(
        kind, f"{new} did not become healthy"
    )
    brain_text = f"; {brain.text}" if brain is not None else ""
    if brain is None and kind is StepKind.SWAP_BRAIN:
        brain_text = "; the brain was not touched"
    if started.running:
        if brain is not None:
            where = (
                f"{why}, so {service} is running {old} again (degraded, as before the {plan.kind}){brain_text}; "
                f"the compose file names {old}"
            )
        else:
            where = f"{why}, so {service} is running {old} again (as before the {plan.kind}){brain_text}; the compose file names {old}"
        next_action = f"read why in `{compose}logs {service}` and the error above, fix it, then run `{retry}` again"
        return Recovery(where, next_action, f"started {old} again")
    file_says = f"the compose file names {old}" if started.compose_put_back else f"the compose file names {new}"
    where = (
        f"{service} is stopped: {why}, and starting {old} again failed too ({started.problem}); {file_says}{brain_text}"
    )
    if started.compose_put_back:
        next_action = (
            f"read `{compose}logs {service}`, fix the cause, then start {old} with `{compose}up -d {service}`"
            f" (or run `{retry}` again once {new} is fixed)"
        )
    else:
        next_action = (
            f"put {plan.image_file or target.compose_file} back as it was before the run (the copy named above), "
            f"then start {old} with `{compose}up -d {service}`"
        )
    return Recovery(where, next_action, f"starting {old} again failed: {started.problem}")


def describe_failure(plan: Plan, target: TargetConfig, kind: StepKind, undone: bool) -> tuple[str, str]:
    """Where a failed run left the service, and the next thing a person should do."""
    service, old, new = target.service, plan.running_version, plan.request.version
    compose = compose_command(target.compose_file, target.compose_files)
    retry = f"rollbot rollback {target.name} {new}"
    if kind in BEFORE_STOP:
        if undone:
            where = f"nothing was changed: {service} still runs {old} and the compose file names {old}"
            return where, f"fix the cause above, then run `{retry}` again"
        where = f"{service} still runs {old}, but the compose file may name {new}"
        return (
            where,
            f"check the image line of {plan.image_file or target.compose_file}, fix the cause above, then run `{retry}` again",
        )
    if kind is StepKind.STOP:
        where = f"the compose file names {new}; the drain-stop of {service} failed, so {old} may still be running"
        return where, f"check `{compose}ps {service}`, then `{compose}up -d {service}` to finish on {new}"
    if kind is StepKind.SWAP_BRAIN:
        where = f"the compose file names {new} and {service} is stopped: the brain swap failed"
        return where, f"check the brain folder, then run `{compose}up -d {service}` or `{retry}` again"
    if kind is StepKind.START:
        where = f"the compose file names {new} and {service} is stopped: it did not start"
        return where, f"read `{compose}logs {service}`, fix it and run `{compose}up -d {service}`"
    where = f"{service} is now on {new} but unhealthy"
    if plan.upgrades:
        return where, (
            f"read `{compose}logs {service}`, then roll back to {old} with the rollback offered "
            f"(`rollbot rollback {target.name} {old}`)"
        )
    return where, (
        f"read `{compose}logs {service}`; if {new} is not the way out, roll to another version "
        f"with `rollbot rollback {target.name} VERSION`"
    )
