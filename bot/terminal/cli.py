"""The terminal front end: `rollbot rollback`, `rollbot history`.

Exit codes are part of the interface: 0 the rollback succeeded; 1 it ran and failed; 2 nothing
was done (bad input, refused by preflight, or not confirmed).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.text import Text
from sqlalchemy.exc import OperationalError

from bot import redaction
from bot.config import config_path, load_settings
from bot.core.outcomes import PlannedRun, Recovery
from bot.core.rollbot import Rollbot
from bot.errors import RollbotError, report_unexpected
from bot.planning.brain_plan import BrainChoice
from bot.planning.plan import RollbackRequest
from bot.terminal.render import (
    StepProgress,
    console,
    history_table,
    render_plan,
    snapshot_table,
    summary_line,
    ticket_table,
)
from bot.reporting.tickets import Ticket
from bot.core.drill import describe_report
from bot.logs import use_json
from storage import EventView, RunStatus, RunView
from storage.tickets import TicketStatus

if TYPE_CHECKING:
    from handlers.outbox import Outbox

EXIT_OK, EXIT_FAILED, EXIT_NOTHING_DONE = 0, 1, 2

app = typer.Typer(
    help="Roll the Engine back by its runbook: plan, preflight, journaled steps, verified health.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
log = logging.getLogger("rollbot")


@app.callback()
def _options(
    ctx: typer.Context,
    config: Annotated[
        Optional[Path], typer.Option("--config", "-c", help="YAML config (default: $ROLLBOT_CONFIG or ./rollbot.yaml)")
    ] = None,
) -> None:
    ctx.obj = config_path(config)


def _rollbot(ctx: typer.Context) -> Rollbot:
    from bot.wiring import build_rollbot

    rollbot = build_rollbot(ctx.obj)
    for run, brain in rollbot.recover_interrupted():
        console(stderr=True).print(
            Text(
                f"run {run.id} of {run.target} ({run.from_version} → {run.to_version}) was interrupted "
                f"during step '{run.current_step}'" + (f"; {brain}" if brain else "")
                + f"; go on with `rollbot resume {run.id}` or close it with `rollbot abort {run.id}`",
                style="yellow",
            ),
            highlight=False,
        )
    return rollbot


@app.command()
def rollback(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="target name from the config, e.g. engine")],
    version: Annotated[str, typer.Argument(help="the image tag to go back to, e.g. 2.3.1")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="the symptom, for the announcement")] = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    brain: Annotated[
        BrainChoice, typer.Option(help="restore the brain from a snapshot, keep it, or decide from the facts")
    ] = BrainChoice.AUTO,
) -> None:
    """Plan a rollback of TARGET to VERSION, confirm it, and run it."""
    rollbot = _rollbot(ctx)
    out = console()
    requester = f"cli:{getpass.getuser()}"
    planned = rollbot.plan(RollbackRequest(target, version, requester, reason, brain))
    render_plan(out, planned.plan)
    if planned.plan.question:
        planned = _settle_question(rollbot, planned, requester, yes)
        render_plan(out, planned.plan)
    if planned.plan.refusal:
        _fail_line(f"refused: {planned.plan.refusal}")
        raise typer.Exit(EXIT_NOTHING_DONE)
    if not yes and not _confirmed(planned.plan.request):
        rollbot.cancel(planned.run.id, requester, "not confirmed at the terminal")
        _fail_line("cancelled: not confirmed; nothing was changed")
        raise typer.Exit(EXIT_NOTHING_DONE)
    with StepProgress(out, planned.run) as progress:
        run = rollbot.execute(planned, requester, progress)
    _print_outcome(run)
    _print_ticket(rollbot, run.id)
    raise typer.Exit(EXIT_OK if run.status is RunStatus.SUCCEEDED else EXIT_FAILED)


@app.command()
def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="the interrupted run's id (see `rollbot history`)")],
) -> None:
    """Go on with an interrupted run from the step it stopped in."""
    _take_up(ctx, run_id, Recovery.RESUME)


@app.command()
def abort(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="the interrupted run's id (see `rollbot history`)")],
) -> None:
    """Close an interrupted run without going on; what it changed before the drain-stop is undone."""
    _take_up(ctx, run_id, Recovery.ABORT)


def _take_up(ctx: typer.Context, run_id: str, action: Recovery) -> None:
    rollbot = _rollbot(ctx)
    out = console()
    run = rollbot.find_run(run_id)
    if run is None:
        _fail_line(f"refused: run {run_id} is not known to rollbot; see `rollbot history`")
        raise typer.Exit(EXIT_NOTHING_DONE)
    with StepProgress(out, run) as progress:
        outcome = rollbot.take_up(run_id, f"cli:{getpass.getuser()}", action, sink_for=lambda _: progress)
    if outcome.refusal or outcome.run is None:
        _fail_line(f"refused: {outcome.refusal}")
        raise typer.Exit(EXIT_NOTHING_DONE)
    _print_outcome(outcome.run)
    _print_ticket(rollbot, run_id)
    raise typer.Exit(EXIT_OK if outcome.run.status in (RunStatus.SUCCEEDED, RunStatus.ABORTED) else EXIT_FAILED)


@app.command()
def drill(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="target name from the config (not a production one, unless it allows drills)")],
    broken: Annotated[str, typer.Option("--broken", help="a deliberately broken tag to upgrade to, e.g. 2.4.0")],
) -> None:
    """The runbook's drill: snapshot, upgrade to BROKEN, wait until broken, roll back, verify, report."""
    rollbot = _rollbot(ctx)
    out = console()
    out.print(Text(f"drill of {target} with the broken tag {broken}: this breaks {target} on purpose, then rolls it back"),
              highlight=False)

    def phase(event: EventView) -> None:
        if event.kind == "step.finished":
            out.print(Text(f"  {event.outcome}: {event.details.get('step')}"
                           + (f" — {event.details['error']}" if event.details.get("error") else "")), highlight=False)

    done = rollbot.drill(target, broken, f"cli:{getpass.getuser()}", sink=phase)
    for line in describe_report(done):
        out.print(Text(line), highlight=False)
    raise typer.Exit(EXIT_OK if done.status is RunStatus.SUCCEEDED else EXIT_FAILED)


@app.command()
def history(
    ctx: typer.Context,
    target: Annotated[Optional[str], typer.Argument(help="only this target")] = None,
    limit: Annotated[int, typer.Option(help="how many runs, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable, with steps")] = False,
) -> None:
    """List past runs from the journal, newest first."""
    runs = _rollbot(ctx).history(target, limit)
    if as_json:
        typer.echo(json.dumps([_run_json(run) for run in runs], indent=2, default=str))
    elif not runs:
        typer.echo("no runs yet" + (f" for {target}" if target else ""))
    else:
        console().print(history_table(runs))


@app.command()
def snapshot(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="target name from the config")],
    list_them: Annotated[bool, typer.Option("--list", help="list the snapshots, their age and whether they verify")] = False,
) -> None:
    """Snapshot TARGET's brain while the Engine runs (SQLite online backup), or --list them."""
    rollbot = _rollbot(ctx)
    if list_them:
        found = rollbot.snapshots(target)
        if not found:
            typer.echo(f"no snapshots of {target}'s brain yet")
        else:
            console().print(snapshot_table(found))
        return
    taken = rollbot.take_snapshot(target, f"cli:{getpass.getuser()}")
    console().print(Text(
        f"snapshot {taken.path} — schema {taken.schema_version}, {taken.size} bytes, "
        f"taken while {taken.image_tag or 'no container'} ran, sha256 {taken.checksum}"
    ))


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on (HTTP mode)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (HTTP mode)")] = 3000,
    log_format: Annotated[str, typer.Option(help="json (one object per line, with run_id) or text")] = "json",
) -> None:
    """Serve Slack: HTTP (POST /slack/events, GET /healthz), or Socket Mode when SLACK_APP_TOKEN is set."""
    from handlers.app import build_app
    from handlers.recovery import watch_interruptions
    from handlers.server import Door, serve_http, serve_socket_mode, signing_key

    settings = load_settings()
    socket_mode = settings.slack_app_token is not None
    if not socket_mode:  # checked before anything starts: a weak secret lets anyone act as Slack
        signing_key(settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None)
    if log_format == "json":
        use_json(logging.INFO)
    else:
        logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per /health poll is noise
    # Background threads (preflight, runs) must not hold the GIL for the default 5 ms slices
    # while a request waits for its ack; 1 ms slices cut the ack tail under load.
    sys.setswitchinterval(0.001)
    rollbot = _rollbot(ctx)
    slack_app, services = build_app(settings, rollbot)
    _file_tickets_in_background(rollbot)
    watching = watch_interruptions(services)
    signal.signal(signal.SIGTERM, _stop_serving)
    try:
        if settings.slack_app_token is not None:
            serve_socket_mode(slack_app, rollbot.foreground, settings.slack_app_token.get_secret_value())
        else:
            assert settings.slack_signing_secret is not None  # signing_key refused to go on without it
            door = Door(slack_app, settings.slack_signing_secret.get_secret_value(), services.tell)
            serve_http(door, rollbot.foreground, host, port, metrics=rollbot.metrics)  # returns on SIGTERM or Ctrl-C
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        watching.set()
    _stop_gracefully(rollbot, services.outbox)


def _stop_serving(_signum: int, _frame: object) -> None:
    """SIGTERM: leave the serving loop (waitress closes its sockets on SystemExit); the runs in
    flight are then brought to a step boundary by `_stop_gracefully`."""
    raise SystemExit(0)


def _stop_gracefully(rollbot: Rollbot, outbox: "Outbox") -> None:
    timeout = rollbot.config.shutdown_timeout_seconds
    log.warning("rollbot is stopping: no new runs; runs in flight end at their next step boundary (at most %.0fs)", timeout)
    cut_short = rollbot.stop_gracefully(timeout)
    delivered = outbox.drain(timeout=15)
    if cut_short:
        log.warning("runs %s were still in a step and are journaled as interrupted", ", ".join(cut_short))
    if not delivered:
        log.warning("some Slack messages were not delivered before exit")
    logging.shutdown()
    os._exit(0)  # a step cut short still holds a worker thread; the journal already says where it was


def _file_tickets_in_background(rollbot: Rollbot, every_seconds: float = 10.0) -> None:
    """While serving, owed postmortems are retried when due (also those from before a restart)."""
    desk = rollbot.tickets
    if desk is None:
        return

    def loop() -> None:
        while True:
            try:
                desk.process()
            except Exception:  # noqa: BLE001 - the loop must outlive a bad attempt
                log.exception("the postmortem ticket loop failed once; it goes on")
            time.sleep(every_seconds)

    threading.Thread(target=loop, name="rollbot-tickets", daemon=True).start()


def _settle_question(rollbot: Rollbot, planned: PlannedRun, requester: str, yes: bool) -> PlannedRun:
    """A plan that asks whether to restore the brain: answered at the prompt it is planned again with
    the answer; unanswered (or with --yes, which answers nothing) nothing is done, exit 2."""
    question = planned.plan.question or ""
    choice = None if yes else _answer(question)
    if choice is not None:
        outcome = rollbot.answer(planned.run.id, requester, choice, members_of=lambda _group: set())
        if outcome.replanned is not None:
            return outcome.replanned
        _fail_line(f"refused: {outcome.refusal}")
        raise typer.Exit(EXIT_NOTHING_DONE)
    rollbot.cancel(planned.run.id, requester, "the brain question was not answered" + (" (--yes)" if yes else ""))
    _fail_line(f"refused: {' '.join(question.split())} (answer at the prompt, or with --brain restore or --brain keep)")
    raise typer.Exit(EXIT_NOTHING_DONE)


def _answer(question: str) -> BrainChoice | None:
    """Ask the person at the terminal; anything but restore/keep leaves the question open."""
    console().print(Text(question, style="yellow"))
    try:
        answer = typer.prompt("restore / keep / cancel", default="cancel")
    except typer.Abort:
        return None
    return {"restore": BrainChoice.RESTORE, "keep": BrainChoice.KEEP}.get(answer.strip().lower())


tickets_app = typer.Typer(help="Postmortem tickets: the pending ones, and retrying them now.", no_args_is_help=False)
app.add_typer(tickets_app, name="tickets")


@tickets_app.callback(invoke_without_command=True)
def tickets(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="created tickets too")] = False,
) -> None:
    """List postmortem tickets still owed (and with --all, the created ones)."""
    if ctx.invoked_subcommand is not None:
        return
    desk = _rollbot(ctx.parent or ctx).tickets
    assert desk is not None
    rows = desk.outbox.all(None if show_all else TicketStatus.PENDING)
    if not rows:
        typer.echo("no pending postmortem tickets" if not show_all else "no postmortem tickets yet")
        return
    console().print(ticket_table(rows))


@tickets_app.command("retry")
def tickets_retry(ctx: typer.Context) -> None:
    """Try every pending ticket now, whatever its backoff says."""
    desk = _rollbot(ctx.parent.parent if ctx.parent and ctx.parent.parent else ctx).tickets
    assert desk is not None
    results = desk.process(force=True)
    if not results:
        typer.echo("no pending postmortem tickets")
    for run_id, result in results.items():
        typer.echo(f"{run_id}: " + (f"created {result.key} {result.url or ''}".rstrip() if isinstance(result, Ticket)
                                    else f"still pending: {result}"))
    if any(not isinstance(result, Ticket) for result in results.values()):
        raise typer.Exit(EXIT_FAILED)


def _print_ticket(rollbot: Rollbot, run_id: str) -> None:
    if rollbot.tickets is None:
        return
    owed = rollbot.tickets.outbox.get(run_id)
    if owed is None:
        return
    if owed.key:
        console().print(Text(f"postmortem: {owed.url or owed.key}"), highlight=False)
    else:
        console(stderr=True).print(Text(
            f"postmortem ticket pending ({owed.last_error}); it is retried automatically — `rollbot tickets`",
            style="yellow"), highlight=False)


def _confirmed(request: RollbackRequest) -> bool:
    try:
        return typer.confirm(f"Roll back {request.target} to {request.version}?", default=False)
    except typer.Abort:
        return False


def _print_outcome(run: RunView) -> None:
    line = summary_line(run)
    if run.status is RunStatus.SUCCEEDED:
        console().print(Text(line, style="green"), highlight=False)
    else:
        _fail_line(line)


def _fail_line(text: str) -> None:
    console(stderr=True).print(Text(text, style="red"), highlight=False, soft_wrap=True)


def _run_json(run: RunView) -> dict[str, object]:
    return {
        "id": run.id, "target": run.target, "status": run.status.value, "from_version": run.from_version,
        "to_version": run.to_version, "requester": run.requester, "reason": run.reason,
        "created_at": run.created_at, "started_at": run.started_at, "finished_at": run.finished_at,
        "current_step": run.current_step, "error": run.error, "next_action": run.next_action,
        "summary": run.summary,
        "steps": [
            {"name": s.name, "status": s.status.value, "started_at": s.started_at, "finished_at": s.finished_at,
             "detail": s.detail, "error": s.error}
            for s in run.steps
        ],
    }


def main() -> None:
    """Entry point: click handles usage errors (exit 2); everything else meets one error sink."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        redaction.install(load_settings())
        app()
    except RollbotError as error:
        _fail_line(str(error))
        sys.exit(EXIT_NOTHING_DONE)
    except OperationalError as error:  # the journal's database is down or refuses us: not a bug
        reason = str(error.orig or error).strip().splitlines()[0][:300]
        _fail_line(f"cannot use the journal database (DATABASE_URL): {reason}")
        sys.exit(EXIT_FAILED)
    except Exception as error:  # noqa: BLE001 - a bug: one line for the person, the trace for the log
        _fail_line(report_unexpected(error, "running a command at the terminal"))
        sys.exit(EXIT_FAILED)
