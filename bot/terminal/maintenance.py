"""The terminal's commands around runs: `rollbot drill`, `history`, `status`, `snapshot`, `replay` and `tickets`.

They practise, look back, prepare and follow up; none of them rolls anything back, which is
bot/terminal/cli.py's part.
"""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.text import Text

from bot.core.drill import describe_report
from bot.ports import Ticket
from bot.terminal.render import console, history_table, snapshot_table, ticket_table
from bot.terminal.session import EXIT_FAILED, EXIT_OK, rollbot_for
from bot.text import outcome_label
from storage import EventKind, EventView, RunStatus, RunView
from storage.tickets import TicketStatus


def register(app: typer.Typer) -> None:
    """Add these commands, and `tickets` with its `retry`, to the program's app."""
    app.command()(drill)
    app.command()(history)
    app.command()(status)
    app.command()(snapshot)
    app.command()(replay)
    tickets_app = typer.Typer(
        help="Postmortem tickets: the pending ones, and retrying them now.", no_args_is_help=False
    )
    tickets_app.callback(invoke_without_command=True)(tickets)
    tickets_app.command("retry")(tickets_retry)
    app.add_typer(tickets_app, name="tickets")


def drill(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(help="target name from the config (not a production one, unless it allows drills)")
    ],
    broken: Annotated[str, typer.Option("--broken", help="a deliberately broken tag to upgrade to, e.g. 2.4.0")],
) -> None:
    """The runbook's drill: snapshot, upgrade to BROKEN, wait until broken, roll back, verify, report."""
    rollbot = rollbot_for(ctx)
    out = console()
    out.print(
        Text(f"drill of {target} with the broken tag {broken}: this breaks {target} on purpose, then rolls it back"),
        highlight=False,
    )

    def phase(event: EventView) -> None:
        if event.kind == EventKind.STEP_FINISHED:
            out.print(
                Text(
                    f"  {event.outcome}: {event.details.get('step')}"
                    + (f" — {event.details['error']}" if event.details.get("error") else "")
                ),
                highlight=False,
            )

    done = rollbot.drill(target, broken, f"cli:{getpass.getuser()}", sink=phase)
    for line in describe_report(done):
        out.print(Text(line), highlight=False)
    raise typer.Exit(EXIT_OK if done.status is RunStatus.SUCCEEDED else EXIT_FAILED)


def history(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Argument(help="only this target")] = None,
    limit: Annotated[int, typer.Option(help="how many runs, newest first")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable, with steps")] = False,
) -> None:
    """List past runs from the journal, newest first."""
    rollbot = rollbot_for(ctx)
    runs = rollbot.history(target, limit)
    if as_json:
        typer.echo(json.dumps([_run_json(run) for run in runs], indent=2, default=str))
        return
    if not runs:
        typer.echo("no runs yet" + (f" for {target}" if target else ""))
    else:
        console().print(history_table(runs))
    marks = rollbot.known_bad(target)
    if marks:
        console().print(Text("known-bad versions (refused until cleared: `rollbot clear TARGET VERSION --reason …`)"))
        for mark in marks:
            style = "red" if mark.active else ""
            console().print(Text(f"  {mark.target}: {mark.describe()}", style=style), highlight=False)


def status(ctx: typer.Context) -> None:
    """Each target now: version, health, newest snapshot, run in progress, known-bad versions.

    What `/rollback status` shows in Slack; known-bad versions are refused until cleared."""
    out = console()
    for found in rollbot_for(ctx).status():
        health = "healthy" if found.healthy else found.health
        out.print(
            Text(
                f"{found.name} ({found.environment}): {found.running_version or '?'} ({found.container_state}) — {health}"
            ),
            highlight=False,
        )
        if found.newest_snapshot is not None:
            age = int(found.newest_snapshot.age_seconds() // 60)
            out.print(Text(f"  newest snapshot {found.newest_snapshot.path.name}, {age} min old"), highlight=False)
        if found.run_in_progress:
            out.print(Text(f"  run {found.run_in_progress} in progress"), highlight=False)
        for line in found.known_bad:
            out.print(Text(f"  {line}", style="red"), highlight=False)


def snapshot(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="target name from the config")],
    list_them: Annotated[
        bool, typer.Option("--list", help="list the snapshots, their age and whether they verify")
    ] = False,
) -> None:
    """Snapshot TARGET's brain while the Engine runs (SQLite online backup), or --list them."""
    rollbot = rollbot_for(ctx)
    if list_them:
        found = rollbot.snapshots(target)
        if not found:
            typer.echo(f"no snapshots of {target}'s brain yet")
        else:
            console().print(snapshot_table(found))
        return
    taken = rollbot.take_snapshot(target, f"cli:{getpass.getuser()}")
    console().print(
        Text(
            f"snapshot {taken.path} — schema {taken.schema_version}, {taken.size} bytes, "
            f"taken while {taken.image_tag or 'no container'} ran, sha256 {taken.checksum}"
        )
    )


def tickets(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="created tickets too")] = False,
) -> None:
    """List postmortem tickets still owed (and with --all, the created ones)."""
    if ctx.invoked_subcommand is not None:
        return
    desk = rollbot_for(ctx.parent or ctx).tickets
    assert desk is not None
    rows = desk.outbox.all(None if show_all else TicketStatus.PENDING)
    if not rows:
        typer.echo("no pending postmortem tickets" if not show_all else "no postmortem tickets yet")
        return
    console().print(ticket_table(rows))


def tickets_retry(ctx: typer.Context) -> None:
    """Try every pending ticket now, whatever its backoff says; one the serve loop is attempting
    (it holds the lease) is left to it: two attempts at once could create two tickets."""
    desk = rollbot_for(ctx.parent.parent if ctx.parent and ctx.parent.parent else ctx).tickets
    assert desk is not None
    results = desk.process(force=True)
    held = desk.outbox.leased()  # another worker (the serve loop) is attempting these right now
    for run_id in held:
        typer.echo(f"{run_id}: being attempted by another rollbot (the serve loop) right now; see `rollbot tickets`")
    if not results and not held:
        typer.echo("no pending postmortem tickets")
    for run_id, result in results.items():
        typer.echo(
            f"{run_id}: "
            + (
                f"created {result.key} {result.url or ''}".rstrip()
                if isinstance(result, Ticket)
                else f"still pending: {result}"
            )
        )
    if any(not isinstance(result, Ticket) for result in results.values()):
        raise typer.Exit(EXIT_FAILED)


def _run_json(run: RunView) -> dict[str, object]:
    return {
        "id": run.id,
        "target": run.target,
        "status": run.status.value,
        "outcome": outcome_label(run),  # "partial (…)" or "succeeded, errors persist" where status says succeeded
        "from_version": run.from_version,
        "to_version": run.to_version,
        "requester": run.requester,
        "reason": run.reason,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "current_step": run.current_step,
        "error": run.error,
        "next_action": run.next_action,
        "summary": run.summary,
        "steps": [
            {
                "name": s.name,
                "status": s.status.value,
                "started_at": s.started_at,
                "finished_at": s.finished_at,
                "detail": s.detail,
                "error": s.error,
            }
            for s in run.steps
        ],
    }


def replay(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="the run whose restore kept the forensic copy")],
    table: Annotated[str, typer.Option("--table", help="the brain's table whose bad-window rows to copy back")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would be copied and which keys conflict; copy nothing")
    ] = False,
) -> None:
    """Copy a table's rows from a run's forensic copy back into the live brain (the Engine may run)."""
    done = rollbot_for(ctx).replay(run_id, table, dry_run, f"cli:{getpass.getuser()}")
    console().print(Text(("dry run: " if dry_run else "") + done.describe()), highlight=False)
    if not dry_run and done.copied:
        console().print(Text(f"journaled on run {run_id}: {len(done.copied)} key(s) copied"), highlight=False)
    raise typer.Exit(EXIT_OK)
