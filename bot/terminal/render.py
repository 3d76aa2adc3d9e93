"""Rendering for the terminal: the plan, live step progress, history, snapshots, tickets.

Pure presentation over the core's data (plans, journal events, run views). On a real terminal
steps animate with rich; in a pipe or a CI log each journal event becomes one plain line.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from bot.brain.snapshots import Snapshot
from bot.planning.plan import Plan
from bot.text import CHECK_MARKS, STEP_MARKS, Mark, affected_text, duration, external_lines, outcome_label, versions
from storage import EventKind, EventView, RunStatus, RunView, StepStatus
from storage.tickets import TicketView

# How the terminal draws each mark (bot/text.py decides which mark a check or a step gets).
GLYPHS: dict[Mark, str] = {
    Mark.DONE: "[green]✓[/]",
    Mark.WARNING: "[yellow]![/]",
    Mark.FAILED: "[red]✗[/]",
    Mark.QUESTION: "[yellow]?[/]",
    Mark.WAITING: "[dim]·[/]",
    Mark.RUNNING: "[yellow]…[/]",
    Mark.SKIPPED: "[dim]–[/]",
}


def console(stderr: bool = False) -> Console:
    """Wide when not a terminal, so CI logs and pipes never get rows cut in half."""
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=200, soft_wrap=True)


def render_plan(out: Console, plan: Plan) -> None:
    request = plan.request
    out.print(
        f"[bold]{'Upgrade plan' if plan.upgrades else 'Rollback plan'}[/] {escape(request.target)} ({escape(plan.environment or '?')}): "
        f"{escape(plan.running_version or '?')} → {escape(request.version)}"
        + (f" — due to {escape(request.reason)}" if request.reason else "")
    )
    out.print(f"requested by {escape(request.requester)}")
    out.print("[bold]Preflight[/]")
    for check in plan.checks:
        out.print(f"  {GLYPHS[CHECK_MARKS[check.result]]} {check.name}: {escape(check.detail)}", highlight=False)
    if plan.brain is not None and plan.brain.snapshot is not None and (plan.brain.restore or plan.brain.asking):
        _render_brain(out, plan)
    if plan.external is not None:
        out.print(
            "[bold]External effects not rolled back[/]"
            + (" [yellow](partial rollback)[/]" if plan.external.count else "")
        )
        for line in external_lines(plan.external):
            out.print(Text(f"  {line}"), highlight=False)
    if plan.kept is not None and plan.kept.warning:
        out.print(Text(f"Earlier versions: {plan.kept.warning}", style="yellow"), highlight=False)
    if plan.judgement is not None:
        out.print("[bold]Evidence[/] (the runbook's when to roll back)")
        out.print(Text(f"  {plan.judgement.headline}"), highlight=False, soft_wrap=True)
        for line in plan.judgement.evidence:
            out.print(Text(f"  {line}"), highlight=False, soft_wrap=True)
    if plan.rehearsal is not None:
        warning = plan.rehearsal.warning
        text = plan.rehearsal.describe() + (
            f" — {warning}" if warning and plan.rehearsal.expected_seconds is not None else ""
        )
        out.print(Text(f"Drills: {text}", style="yellow" if warning else ""), highlight=False)
    if plan.approvable:
        out.print("[bold]Steps[/]")
        for number, step in enumerate(plan.steps, 1):
            skipped = f" [dim](skipped: {escape(step.skip_reason)})[/]" if step.skip_reason else ""
            out.print(f"  {number}. {escape(step.description)}{skipped}", highlight=False)


def _render_brain(out: Console, plan: Plan) -> None:
    brain = plan.brain
    assert brain is not None
    out.print("[bold]Brain restore[/]" + (" [yellow](if you answer restore)[/]" if brain.asking else ""))
    if brain.snapshot is not None:
        out.print(
            Text(
                f"  from {brain.snapshot.path} (schema {brain.snapshot.schema_version}, taken {brain.snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        )
    if brain.loss is not None:
        out.print(
            Text(
                f"  what the restore undoes ({brain.loss.counts()}; the live brain is moved aside whole into "
                "the forensic copy, never deleted):"
            )
        )
        for table in brain.loss.tables:
            out.print(Text(f"    {table.describe()}"))
        who = affected_text(brain.loss)
        if who:
            out.print(Text(f"  {who}"))


def snapshot_table(found: list[tuple[Snapshot, str | None]]) -> Table:
    table = Table("snapshot", "taken (UTC)", "age", "while", "schema", "size", "verifies")
    for snapshot, problem in found:
        age = snapshot.age_seconds()
        table.add_row(
            *(
                Text(cell)
                for cell in (
                    str(snapshot.path),
                    f"{snapshot.taken_at:%Y-%m-%d %H:%M:%S}",
                    duration(age),
                    snapshot.image_tag or ("by hand" if snapshot.by_hand else "?"),
                    str(snapshot.schema_version),
                    f"{snapshot.size}",
                    "yes" if problem is None else f"NO: {problem}",
                )
            )
        )
    return table


class StepProgress:
    """A journal-event sink that shows each step as it starts and ends."""

    def __init__(self, out: Console, run: RunView) -> None:
        self._out = out
        self._names = {step.position: step.description for step in run.steps}
        self._live = out.is_terminal
        self._progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=out,
            transient=False,
        )
        self._tasks: dict[int, TaskID] = {}

    def __enter__(self) -> StepProgress:
        if self._live:
            self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._live:
            self._progress.stop()

    def __call__(self, event: EventView) -> None:
        position = event.details.get("position")
        if event.kind == EventKind.STEP_STARTED and isinstance(position, int):
            self._started(position)
        elif event.kind == EventKind.STEP_FINISHED and isinstance(position, int):
            self._finished(position, StepStatus(event.outcome or "failed"), event.details)
        elif event.kind == EventKind.SOAK_PROGRESS:
            self._soaking(event.details.get("seconds_left"))

    def _soaking(self, seconds_left: object) -> None:
        """The all-clear's countdown, on the health step's line while it is in flight."""
        note = f"all-clear in {seconds_left}s if health and errors stay recovered"
        finished = {task.id for task in self._progress.tasks if task.finished}
        running = [position for position, task in self._tasks.items() if task not in finished]
        if self._live and running:
            name = self._names.get(running[-1], "")
            self._progress.update(self._tasks[running[-1]], description=f"{escape(name)} — {note}")
        elif not self._live:
            self._out.print(f"  … {note}", highlight=False)

    def _started(self, position: int) -> None:
        name = self._names.get(position, f"step {position + 1}")
        if self._live:
            self._tasks[position] = self._progress.add_task(name, total=1)
        else:
            self._out.print(f"… {escape(name)}", highlight=False)

    def _finished(self, position: int, status: StepStatus, details: dict[str, object]) -> None:
        name = self._names.get(position, f"step {position + 1}")
        note = _step_note(status, details)
        line = f"{GLYPHS[STEP_MARKS[status]]} {escape(name)}{note}"
        if self._live and position in self._tasks:
            self._progress.update(self._tasks[position], description=line, completed=1)
            self._progress.stop_task(self._tasks[position])
        else:
            self._out.print(line, highlight=False)


def _step_note(status: StepStatus, details: dict[str, object]) -> str:
    if status is StepStatus.FAILED:
        return f" [red]— {escape(str(details.get('error', 'failed')))}[/]"
    if status is StepStatus.SKIPPED:
        return f" [dim](skipped: {escape(str(details.get('skipped')))})[/]"
    written_to = details.get("log_file") or details.get("staged")
    if "bytes" in details and written_to:
        return f" [dim]({details['bytes']} bytes → {escape(str(written_to))})[/]"
    if details.get("forensic_dir"):
        return f" [dim](the replaced brain is in {escape(str(details['forensic_dir']))})[/]"
    return ""


def history_table(runs: list[RunView]) -> Table:
    table = Table("run", "when (UTC)", "target", "versions", "status", "step", "took", "requested by", "reason")
    for run in runs:
        cells = (
            run.id,
            f"{run.created_at:%Y-%m-%d %H:%M:%S}",
            run.target,
            versions(run),
            outcome_label(run),
            _step_column(run),
            duration(run.seconds) if run.seconds is not None else "",
            run.requester,
            run.reason or (run.error or "")[:80],
        )
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _step_column(run: RunView) -> str:
    if run.status in (RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.RUNNING):
        return f"at {run.current_step}" if run.current_step else ""
    done = sum(1 for step in run.steps if step.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED))
    return f"{done}/{len(run.steps)}" if run.steps else ""


def ticket_table(rows: list[TicketView]) -> Table:
    table = Table("run", "status", "attempts", "next attempt (UTC)", "ticket", "last error")
    for row in rows:
        table.add_row(
            *(
                Text(cell)
                for cell in (
                    row.run_id,
                    row.status.value,
                    str(row.attempts),
                    f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S}" if row.status.value == "pending" else "",
                    row.url or row.key or "",
                    row.last_error or "",
                )
            )
        )
    return table
