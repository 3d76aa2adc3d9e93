"""The terminal's run commands: `rollbot rollback`, `upgrade`, `clear`, `resume`, `abort`.

Each plans or takes up a run in the core, asks the person at the terminal what the plan leaves
open, shows the steps as the journal records them, and ends with one line and an exit code
(bot/terminal/session.py).
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.text import Text

from bot.core.outcomes import PlannedRun, Recovery
from bot.core.rollbacks import PREVIOUS_GOOD_CHECK
from bot.core.rollbot import Rollbot
from bot.planning.brain_plan import BrainChoice
from bot.planning.plan import Plan, RollbackRequest
from bot.planning.preflight import CheckResult
from bot.running.summary import RunSummary
from bot.terminal.render import StepProgress, console, render_plan
from bot.terminal.session import EXIT_FAILED, EXIT_NOTHING_DONE, EXIT_OK, fail_line, reporting_sinks, rollbot_for
from bot.text import summary_line
from storage import RunKind, RunStatus, RunView


def register(app: typer.Typer) -> None:
    """Add the run commands to the program's app, in the order `--help` lists them."""
    app.command()(rollback)
    app.command()(upgrade)
    app.command()(clear)
    app.command()(resume)
    app.command()(abort)


def rollback(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="target name from the config, e.g. engine")],
    version: Annotated[
        str | None, typer.Argument(help="the image tag to go back to, e.g. 2.3.1; default: the previous good version")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="the symptom, for the announcement")] = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    brain: Annotated[
        BrainChoice, typer.Option(help="restore the brain from a snapshot, keep it, or decide from the facts")
    ] = BrainChoice.AUTO,
) -> None:
    """Plan a rollback of TARGET to VERSION (or to the previous good version), confirm it, and run it."""
    rollbot = rollbot_for(ctx)
    requester = f"cli:{getpass.getuser()}"
    request = RollbackRequest(target, version or "", requester, reason, brain)
    # Only a missing VERSION means "the previous good one"; an empty one is refused as empty.
    planned = rollbot.plan(request) if version is not None else rollbot.plan_previous_good(request)
    _confirm_and_run(ctx, rollbot, planned, requester, yes)


def upgrade(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="target name from the config, e.g. engine")],
    version: Annotated[str, typer.Argument(help="the image tag to upgrade to, e.g. 2.4.0")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="why, for the announcement")] = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Upgrade TARGET to VERSION with a rollback's safeguards; if it fails, the rollback is planned.

    The same plan, preflight and journal as a rollback, a brain snapshot just before the stop, and
    health watched through the soak before the all-clear."""
    rollbot = rollbot_for(ctx)
    requester = f"cli:{getpass.getuser()}"
    planned = rollbot.plan(RollbackRequest(target, version, requester, reason, kind=RunKind.UPGRADE))
    _confirm_and_run(ctx, rollbot, planned, requester, yes)


def clear(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="target name from the config, e.g. engine")],
    version: Annotated[str, typer.Argument(help="the known-bad version that may be deployed again")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="the root cause found, and why it may run again")],
) -> None:
    """Clear a known-bad VERSION of TARGET (one rolled back from) so it may be deployed again; journaled."""
    rollbot = rollbot_for(ctx)
    cleared = rollbot.clear_known_bad(target, version, f"cli:{getpass.getuser()}", reason)
    for mark in cleared:
        console().print(Text(f"cleared: {mark.describe()}", style="green"), highlight=False)
    raise typer.Exit(EXIT_OK)


def _confirm_and_run(ctx: typer.Context, rollbot: Rollbot, planned: PlannedRun, requester: str, yes: bool) -> None:
    """Show the plan, settle its question, confirm, run, and end with one line and an exit code."""
    out = console()
    target = planned.plan.request.target
    render_plan(out, planned.plan)
    if planned.plan.question:
        planned = _settle_question(rollbot, planned, requester, yes)
        render_plan(out, planned.plan)
    if planned.plan.refusal:
        fail_line(f"refused: {planned.plan.refusal}")
        raise typer.Exit(EXIT_NOTHING_DONE)
    unverified = _unverified_choice(planned)
    if yes and unverified:
        rollbot.cancel(planned.run.id, requester, "the version rollbot chose was never seen healthy (--yes)")
        fail_line(f"refused: {unverified}; with --yes name the version, e.g. `rollbot rollback {target} VERSION --yes`")
        raise typer.Exit(EXIT_NOTHING_DONE)
    if not yes and not _confirmed(planned.plan):
        rollbot.cancel(planned.run.id, requester, "not confirmed at the terminal")
        fail_line("cancelled: not confirmed; nothing was changed")
        raise typer.Exit(EXIT_NOTHING_DONE)
    with StepProgress(out, planned.run) as progress:
        run = rollbot.execute(planned, requester, reporting_sinks(ctx, rollbot, progress)(planned.run))
    _print_outcome(run)
    _print_ticket(rollbot, run.id)
    _offer_fallback(rollbot, run, requester)
    # Healthy but errors persist is not the all-clear: a script waiting for one must not see 0.
    # A partial rollback is done (0): what stays undone is outside, and the last line says so.
    all_clear = run.status is RunStatus.SUCCEEDED and RunSummary.from_dict(run.summary).all_clear
    raise typer.Exit(EXIT_OK if all_clear else EXIT_FAILED)


def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="the interrupted run's id (see `rollbot history`)")],
) -> None:
    """Go on with an interrupted run from the step it stopped in."""
    _take_up(ctx, run_id, Recovery.RESUME)


def abort(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="the interrupted run's id (see `rollbot history`)")],
) -> None:
    """Close an interrupted run without going on; what it changed before the drain-stop is undone."""
    _take_up(ctx, run_id, Recovery.ABORT)


def _take_up(ctx: typer.Context, run_id: str, action: Recovery) -> None:
    rollbot = rollbot_for(ctx)
    out = console()
    run = rollbot.find_run(run_id)
    if run is None:
        fail_line(f"refused: run {run_id} is not known to rollbot; see `rollbot history`")
        raise typer.Exit(EXIT_NOTHING_DONE)
    with StepProgress(out, run) as progress:
        sink_for = reporting_sinks(ctx, rollbot, progress)
        outcome = rollbot.take_up(run_id, f"cli:{getpass.getuser()}", action, sink_for=sink_for)
    if outcome.refusal or outcome.run is None:
        fail_line(f"refused: {outcome.refusal}")
        raise typer.Exit(EXIT_NOTHING_DONE)
    _print_outcome(outcome.run)
    _print_ticket(rollbot, run_id)
    raise typer.Exit(EXIT_OK if outcome.run.status in (RunStatus.SUCCEEDED, RunStatus.ABORTED) else EXIT_FAILED)


def _offer_fallback(rollbot: Rollbot, run: RunView, requester: str) -> None:
    """An upgrade that went wrong: the rollback back to the version before it, planned now and
    printed with the exact command. The terminal does not start it by itself: the person runs it."""
    fallback = rollbot.fallback_for(run)
    if fallback is None:
        return
    out = console()
    out.print(
        Text(f"The upgrade of {run.target} to {run.to_version} did not end well; the rollback is ready:", style="bold")
    )
    render_plan(out, fallback.plan)
    command = f"rollbot rollback {run.target} {fallback.plan.request.version}"
    if fallback.plan.restores_brain:
        command += " --brain restore"
    command += f' --reason "upgrade to {run.to_version} failed (run {run.id})"'
    rollbot.cancel(fallback.run.id, requester, f"offered at the terminal as `{command}`")
    out.print(Text(f"to roll back: {command}", style="bold yellow"), highlight=False)


def _settle_question(rollbot: Rollbot, planned: PlannedRun, requester: str, yes: bool) -> PlannedRun:
    """A plan that asks whether to restore the brain: answered at the prompt it is planned again with
    the answer; unanswered (or with --yes, which answers nothing) nothing is done, exit 2."""
    question = planned.plan.question or ""
    choice = None if yes else _answer(question)
    if choice is not None:
        outcome = rollbot.answer(planned.run.id, requester, choice, members_of=lambda _group: set())
        if outcome.replanned is not None:
            return outcome.replanned
        fail_line(f"refused: {outcome.refusal}")
        raise typer.Exit(EXIT_NOTHING_DONE)
    rollbot.cancel(planned.run.id, requester, "the brain question was not answered" + (" (--yes)" if yes else ""))
    fail_line(f"refused: {' '.join(question.split())} (answer at the prompt, or with --brain restore or --brain keep)")
    raise typer.Exit(EXIT_NOTHING_DONE)


def _answer(question: str) -> BrainChoice | None:
    """Ask the person at the terminal; anything but restore/keep leaves the question open."""
    console().print(Text(question, style="yellow"))
    try:
        answer = typer.prompt("restore / keep / cancel", default="cancel")
    except typer.Abort:
        return None
    return {"restore": BrainChoice.RESTORE, "keep": BrainChoice.KEEP}.get(answer.strip().lower())


def _print_ticket(rollbot: Rollbot, run_id: str) -> None:
    if rollbot.tickets is None:
        return
    owed = rollbot.tickets.outbox.get(run_id)
    if owed is None:
        return
    if owed.key:
        console().print(Text(f"postmortem: {owed.url or owed.key}"), highlight=False)
    else:
        console(stderr=True).print(
            Text(
                f"postmortem ticket pending ({owed.last_error}); it is retried automatically — `rollbot tickets`",
                style="yellow",
            ),
            highlight=False,
        )


def _unverified_choice(planned: PlannedRun) -> str | None:
    """A version rollbot chose without ever seeing it healthy: --yes never takes such a guess."""
    for check in planned.plan.checks:
        if check.name == PREVIOUS_GOOD_CHECK and check.result is CheckResult.WARNING:
            return check.detail
    return None


def _confirmed(plan: Plan) -> bool:
    request = plan.request
    verb = "Upgrade" if plan.upgrades else "Roll back"
    try:
        return typer.confirm(f"{verb} {request.target} to {request.version}?", default=False)
    except typer.Abort:
        return False


def _print_outcome(run: RunView) -> None:
    line = summary_line(run)
    facts = RunSummary.from_dict(run.summary)
    if run.status is RunStatus.SUCCEEDED and (facts.errors_persist or facts.partial):
        console().print(Text(line, style="yellow"), highlight=False)
    elif run.status is RunStatus.SUCCEEDED:
        console().print(Text(line, style="green"), highlight=False)
    else:
        fail_line(line)
