"""Text the two front ends share: the line that ends a run, version arrows, durations, marks.

The terminal and Slack say the same things in their own dress (rich markup, Block Kit), so the
words and the meaning of each mark are decided here, once, and each front end only draws them.
A front end that kept a table of its own once missed a check result and crashed; keyed by
`Mark`, a new result or status needs one line here and nothing in either front end. Imports
neither rich nor Slack: the core's words must not depend on how they are shown.
"""

from __future__ import annotations

from enum import StrEnum

from bot.brain.external import ExternalEffects
from bot.brain.facts import LossReport
from bot.planning.preflight import CheckResult
from bot.running.summary import RunSummary
from storage import RunStatus, RunView, StepStatus


class Mark(StrEnum):
    """What a mark in front of a check or a step tells the reader; the value is its plain label."""

    DONE = "done"
    WARNING = "warning"
    FAILED = "failed"
    QUESTION = "question"
    WAITING = "waiting"
    RUNNING = "running"
    SKIPPED = "skipped"


CHECK_MARKS: dict[CheckResult, Mark] = {
    CheckResult.PASSED: Mark.DONE,
    CheckResult.WARNING: Mark.WARNING,
    CheckResult.FAILED: Mark.FAILED,
    CheckResult.ASK: Mark.QUESTION,
    CheckResult.NOT_RUN: Mark.WAITING,
}
STEP_MARKS: dict[StepStatus, Mark] = {
    StepStatus.SUCCEEDED: Mark.DONE,
    StepStatus.FAILED: Mark.FAILED,
    StepStatus.SKIPPED: Mark.SKIPPED,
    StepStatus.RUNNING: Mark.RUNNING,
    StepStatus.PENDING: Mark.WAITING,
}


def summary_line(run: RunView) -> str:
    """The one line that ends a run: version, health, total time, downtime, the evidence."""
    summary = RunSummary.from_dict(run.summary)
    took = duration(summary.seconds)
    downtime = summary.downtime_seconds
    logs = summary.log_file or "no logs captured"
    if run.status is RunStatus.SUCCEEDED:
        down = f", downtime {duration(downtime)}" if downtime is not None else ""
        brain = ""
        if summary.forensic_copy:
            brain = (
                f"; brain {summary.brain}, the replaced brain with the {summary.rows_rolled_back} "
                f"rolled-back row(s) is kept at {summary.forensic_copy}"
            )
        journal = f"; {summary.journal}" if summary.journal else ""
        if summary.errors_persist:
            return (
                f"{run.target} is healthy on {run.to_version} but errors persist ({summary.errors_persist}) — "
                f"not an all-clear; took {took}{down}; logs of {run.from_version}: {logs}{brain}{journal} (run {run.id})"
            )
        journal += f"; {summary.recovery}" if summary.recovery else ""
        if summary.partial:
            return (
                f"{summary.partial_text()} — {run.target} is healthy on {run.to_version}; took {took}{down}; "
                f"logs of {run.from_version}: {logs}{brain}{journal} (run {run.id})"
            )
        return (
            f"{run.target} is healthy on {run.to_version} — took {took}{down}; logs of {run.from_version}: "
            f"{logs}{brain}{journal} (run {run.id})"
        )
    state = summary.service_state or run.error
    if summary.journal:
        state = f"{state}; {summary.journal}"
    return f"{run.kind} of {run.target} to {run.to_version} {run.status}: {run.error}. State: {state}. Next: {run.next_action} (run {run.id}, logs: {logs})"


def outcome_label(run: RunView) -> str:
    """A run's status as history shows it: a partial rollback (external effects stay) or healthy
    with errors persisting is told apart from a plain success."""
    summary = RunSummary.from_dict(run.summary)
    if run.status is RunStatus.SUCCEEDED and summary.errors_persist:
        return "succeeded, errors persist"
    if run.status is RunStatus.SUCCEEDED and summary.partial:
        return f"partial ({summary.external_effects} external effect(s) not rolled back)"
    return run.status.value


def versions(run: RunView) -> str:
    """`2.4.0 → 2.3.1` for a rollback, `upgrade 2.3.1 → 2.4.0` for an upgrade; a drill names the
    broken tag it rehearsed with."""
    if run.kind == "upgrade":
        return f"upgrade {run.from_version or '?'} → {run.to_version}"
    if run.kind != "rollback":
        return f"{run.kind} with broken {run.to_version}"
    return f"{run.from_version or '?'} → {run.to_version}"


def duration(seconds: object) -> str:
    """Minutes and seconds once a minute has passed; anything not a number (a summary written by
    an older rollbot, a step that never ended) is `?` rather than an error."""
    if not isinstance(seconds, (int, float)):
        return "?"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


SHOWN_EXTERNAL_CALLS = 10


def affected_text(loss: LossReport) -> str | None:
    """Who the rows that leave belong to, counted per identifying column (`brain.affected`)."""
    return f"who was affected: {loss.who()}" if loss.affected else None


def affected_counts(loss: LossReport) -> str:
    """The same, short, for a confirm dialog: `conversations.user_id 3, feedback.user_id 3`."""
    return ", ".join(f"{each.table}.{each.column} {each.distinct}" for each in loss.affected if each.problem is None)


def external_lines(external: ExternalEffects) -> list[str]:
    """The plan's "external effects not rolled back": the headline, then the first calls."""
    lines = [external.headline()]
    lines += [f"{call.describe()}" for call in external.calls[:SHOWN_EXTERNAL_CALLS]]
    if external.count > SHOWN_EXTERNAL_CALLS:
        lines.append(f"… and {external.count - SHOWN_EXTERNAL_CALLS} more (the postmortem lists {len(external.calls)})")
    return lines
