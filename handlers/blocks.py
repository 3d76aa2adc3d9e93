"""Block Kit rendering: pure functions from the core's data (plans, journal views) to messages.

Every message is built from slack_sdk's Block Kit models, whose `to_dict()` validates lengths
and shapes, so an invalid message fails here, in tests, rather than at Slack. Text from people
(reasons, versions) is escaped for mrkdwn and clipped to Slack's limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.core.drill import describe_report
from bot.core.outcomes import ServiceState, TargetStatus
from bot.planning.judgement import Call, Judgement
from bot.planning.plan import Plan
from bot.running.summary import RunSummary
from bot.text import CHECK_MARKS, STEP_MARKS, Mark, summary_line, versions
from handlers.ids import ActionId, AnswerActionId, BlockId, RecoveryActionId
from storage import RunStatus, RunView, StepStatus

SECTION_LIMIT = 3000
# How Slack draws each mark (bot/text.py decides which mark a check or a step gets).
EMOJI: dict[Mark, str] = {
    Mark.DONE: ":white_check_mark:",
    Mark.WARNING: ":warning:",
    Mark.FAILED: ":x:",
    Mark.QUESTION: ":question:",
    Mark.WAITING: ":white_circle:",
    Mark.RUNNING: ":hourglass_flowing_sand:",
    Mark.SKIPPED: ":heavy_minus_sign:",
}


@dataclass(frozen=True)
class Message:
    """A message's fallback text (notifications, screen readers) and its validated blocks."""

    text: str
    blocks: list[dict[str, Any]]


def esc(text: object) -> str:
    """Escape for mrkdwn: people's text must not become mentions, links or formatting."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def user(user_id: str) -> str:
    return f"<@{user_id}>" if user_id.startswith(("U", "W")) and user_id.isalnum() else esc(user_id)


def plan_message(plan: Plan, run: RunView) -> Message:
    request = plan.request
    title = f"Rollback plan: {request.target} → {request.version}"
    lines = [
        f"*{esc(request.target)}* ({esc(plan.environment or '?')}): "
        f"`{esc(plan.running_version or '?')}` → `{esc(request.version)}`",
        f"Requested by {user(request.requester)}" + (f" — due to {esc(request.reason)}" if request.reason else ""),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=_clip(title, 150)),
        _section("\n".join(lines)),
        _section(
            "*Preflight*\n"
            + "\n".join(
                f"{EMOJI[CHECK_MARKS[check.result]]} *{esc(check.name)}*: {esc(check.detail)}" for check in plan.checks
            )
        ),
    ]
    if plan.brain is not None and plan.brain.snapshot is not None and (plan.restores_brain or plan.brain.asking):
        blocks.append(_section(_brain_text(plan)))
    if plan.kept is not None and plan.kept.warning:
        blocks.append(_section(f":warning: *Earlier versions:* {esc(plan.kept.warning)}"))
    if plan.judgement is not None:
        blocks.append(_section(evidence_text(plan.judgement)))
    if plan.rehearsal is not None:
        icon = ":warning:" if plan.rehearsal.warning else ":stopwatch:"
        text = plan.rehearsal.describe() + (
            f" — {plan.rehearsal.warning}"
            if plan.rehearsal.warning and plan.rehearsal.expected_seconds is not None
            else ""
        )
        blocks.append(_section(f"{icon} *Drills:* {esc(text)}"))
    if plan.approvable:
        blocks.append(
            _section(
                "*Steps*\n"
                + "\n".join(
                    f"{number}. {esc(step.description)}"
                    + (f" _(skipped: {esc(step.skip_reason)})_" if step.skip_reason else "")
                    for number, step in enumerate(plan.steps, 1)
                )
            )
        )
        blocks.append(_buttons(plan, run))
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"run `{run.id}` · the plan expires if not confirmed in time")]
            )
        )
    elif plan.question:
        blocks.append(_section(f":question: *Restore the brain or keep it?* {esc(plan.question)}"))
        blocks.append(_answer_buttons(plan, run))
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"run `{run.id}` · the answer makes a fresh plan here; a restore still needs a second approver"
                    )
                ]
            )
        )
    else:
        blocks.append(_section(f":no_entry: *Refused:* {esc(plan.refusal)}\nNothing was changed."))
    return _message(title, blocks)


def closed_plan_message(run: RunView, note: str) -> Message:
    """The plan message after its decision: buttons gone, who decided what."""
    title = f"Rollback plan: {run.target} → {run.to_version}"
    blocks: list[Block] = [
        HeaderBlock(text=_clip(title, 150)),
        _section(
            f"*{esc(run.target)}*: `{esc(run.from_version or '?')}` → `{esc(run.to_version)}` — requested by "
            f"{user(run.requester)}" + (f" — due to {esc(run.reason)}" if run.reason else "")
        ),
        _section(note),
        ContextBlock(elements=[MarkdownTextObject(text=f"run `{run.id}`")]),
    ]
    return _message(f"{title}: {note}", blocks)


def announcement(run: RunView) -> str:
    reason = f" due to {esc(run.reason)}" if run.reason else ""
    approved = f", approved by {user(run.approver)}" if run.approver else ""
    return (
        f":rotating_light: Rolling back *{esc(run.target)}* ({esc(run.environment or '?')}) from "
        f"`{esc(run.from_version or '?')}` to `{esc(run.to_version)}`{reason} — requested by "
        f"{user(run.requester)}{approved}"
    )


def status_message(run: RunView, note: str | None = None) -> Message:
    """The live checklist, rendered from the journal; `note` is a line under it (the soak's countdown)."""
    lines = [f"{EMOJI[STEP_MARKS[step.status]]} {esc(step.description)}{_took(step.seconds)}" for step in run.steps]
    lines += [note] if note and run.status is RunStatus.RUNNING else []
    head = {
        RunStatus.RUNNING: ":hourglass_flowing_sand: in progress",
        RunStatus.SUCCEEDED: ":white_check_mark: done",
        RunStatus.FAILED: ":x: failed",
        RunStatus.INTERRUPTED: ":warning: interrupted",
        RunStatus.ABORTED: ":no_entry_sign: aborted",
    }.get(run.status, run.status.value)
    title = f"Rollback of {run.target} to {run.to_version}: {head}"
    blocks: list[Block] = [_section(f"*{esc(title)}*\n" + "\n".join(lines))]
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"run `{run.id}`")]))
    return _message(title, blocks)


def evidence_text(judgement: Judgement) -> str:
    """The evidence block, the same on `/rollback check` and on every plan."""
    icon = {Call.ROLL_BACK: ":red_circle:", Call.UNSURE: ":large_yellow_circle:", Call.DONT: ":large_green_circle:"}
    lines = "\n".join(f"• {esc(line)}" for line in judgement.evidence)
    return f"{icon[judgement.call]} *{esc(judgement.headline)}*\n{lines}"


def final_message(run: RunView, ticket_link: str | None = None) -> Message:
    if run.status is RunStatus.SUCCEEDED and RunSummary.from_dict(run.summary).errors_persist:
        text = f":large_yellow_circle: *Healthy but errors persist:* {esc(summary_line(run))}"
    elif run.status is RunStatus.SUCCEEDED:
        text = f":large_green_circle: *All clear:* {esc(summary_line(run))}"
    else:
        text = f":red_circle: *Rollback {esc(run.status.value)}:* {esc(summary_line(run))}"
    if ticket_link:
        text += f"\n:memo: Postmortem: {ticket_link}"
    return _message(summary_line(run), [_section(text)])


def interruption_message(run: RunView, state: ServiceState) -> Message:
    """An interrupted run, for the incident channel: where it stopped, what the service looks like
    now, and the two ways on. The buttons carry the run id; the core checks who clicks."""
    done = [step.name for step in run.steps if step.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED)]
    title = f"Rollback of {run.target} to {run.to_version} was interrupted"
    lines = [
        f":warning: *{esc(title)}* during step `{esc(run.current_step or 'start')}` — {esc(run.error or '')}",
        f"*Steps done:* {esc(', '.join(done) or 'none')}",
        f"*Service now:* {esc(state.describe())}",
        "An approver can resume it from that step (each step checks what is already done) or abort it "
        "(what changed before the drain-stop is undone; the service is otherwise left as it is).",
    ]
    buttons = ActionsBlock(
        block_id=BlockId.RECOVERY_ACTIONS,
        elements=[
            ButtonElement(text="Resume", action_id=RecoveryActionId.RESUME, value=run.id, style="primary"),
            ButtonElement(
                text="Abort",
                action_id=RecoveryActionId.ABORT,
                value=run.id,
                style="danger",
                confirm=ConfirmObject(
                    title="Abort this rollback?",
                    text="The run ends here; the service stays as described above.",
                    confirm="Abort",
                    deny="Back",
                ),
            ),
        ],
    )
    blocks: list[Block] = [
        _section("\n".join(lines)),
        buttons,
        ContextBlock(elements=[MarkdownTextObject(text=f"run `{run.id}`")]),
    ]
    return _message(f"{title} during step {run.current_step}: {state.describe()}", blocks)


def closed_interruption_message(run: RunView, note: str) -> Message:
    """The report once someone resumed or aborted the run: no buttons left to click."""
    title = f"Rollback of {run.target} to {run.to_version} was interrupted during step {run.current_step or 'start'}"
    return _message(
        f"{title}: {note}",
        [
            _section(f":warning: *{esc(title)}*\n{note}"),
            ContextBlock(elements=[MarkdownTextObject(text=f"run `{run.id}`")]),
        ],
    )


def drill_report_message(drill: RunView) -> Message:
    """A drill's report: each phase's time, the rollback's steps, and the change against the last drill."""
    lines = describe_report(drill)
    icon = ":white_check_mark:" if drill.status is RunStatus.SUCCEEDED else ":x:"
    body = f"{icon} *{esc(lines[0])}*\n```" + esc("\n".join(lines[1:])) + "```"
    return _message(lines[0], [_section(body), ContextBlock(elements=[MarkdownTextObject(text=f"drill `{drill.id}`")])])


def ticket_link(key: str, url: str | None) -> str:
    """A Jira ticket as a link; a file ticket by its path (a file:// link opens nothing in Slack)."""
    if url and url.startswith("http"):
        return f"<{url}|{esc(key)}>"
    return f"`{esc(key)}`"


def step_detail(run: RunView, details: dict[str, Any], outcome: str | None) -> str | None:
    """A thread reply for a finished step, when it has something worth a line."""
    step = details.get("step")
    if details.get("error"):
        return f":x: `{esc(step)}` failed: {esc(details['error'])}"
    if step == "capture_logs" and "bytes" in details:
        return f":page_facing_up: captured {details['bytes']} bytes of logs of {esc(run.from_version)}: `{esc(details.get('log_file'))}`"
    if step == "verify_health" and outcome == StepStatus.SUCCEEDED:
        return f":stethoscope: /health ok after {details.get('attempts')} check(s), {details.get('seconds')}s: `{esc(details.get('body'))}`"
    if step == "swap_brain":
        return f":brain: brain restored; the replaced brain is kept in `{esc(details.get('forensic_dir'))}` ({esc(details.get('forensic_holds'))})"
    return None


def status_command_message(statuses: list[TargetStatus]) -> Message:
    blocks: list[Block] = []
    for status in statuses:
        health = ":white_check_mark: healthy" if status.healthy else f":x: {esc(status.health)}"
        snapshot = "no snapshot"
        if status.newest_snapshot is not None:
            snapshot = (
                f"newest snapshot `{esc(status.newest_snapshot.path.name)}`, "
                f"{int(status.newest_snapshot.age_seconds() // 60)} min old"
            )
        busy = (
            f"\n:hourglass_flowing_sand: run `{status.run_in_progress}` in progress" if status.run_in_progress else ""
        )
        kept = ""
        if status.kept is not None:
            kept = f"\n{':warning: ' if status.kept.warning else ''}{esc(status.kept.describe())}"
        blocks.append(
            _section(
                f"*{esc(status.name)}* ({esc(status.environment)}): `{esc(status.running_version or '?')}` "
                f"({esc(status.container_state)}) — {health}\n{snapshot}{busy}{kept}"
            )
        )
    return _message("rollbot status", blocks[:50] or [_section("no targets are configured")])


def history_message(runs: list[RunView]) -> Message:
    if not runs:
        return _message("no runs yet", [_section("No runs yet.")])
    lines = [
        f"`{run.id}` {run.created_at:%Y-%m-%d %H:%M} UTC · *{esc(run.target)}* {esc(versions(run))}"
        f" · {esc(run.status.value)}"
        + (f" at `{esc(run.current_step)}`" if run.status in (RunStatus.FAILED, RunStatus.INTERRUPTED) else "")
        + f" · {user(run.requester)}"
        for run in runs
    ]
    return _message("rollbot history", [_section("*History*\n" + "\n".join(lines))])


def _brain_text(plan: Plan) -> str:
    brain = plan.brain
    assert brain is not None and brain.snapshot is not None
    heading = "*If restored:*" if brain.asking else "*Brain restore*"
    lines = [
        f"{heading} from `{esc(brain.snapshot.path.name)}` (schema {brain.snapshot.schema_version}, "
        f"taken {brain.snapshot.taken_at:%Y-%m-%d %H:%M} UTC)"
    ]
    if brain.loss is not None:
        lines.append(
            f"What the restore undoes ({brain.loss.counts()}; the live brain is kept whole in a forensic copy, "
            "never deleted):"
        )
        lines += [f"• {esc(table.describe())}" for table in brain.loss.tables if table.undone]
    return "\n".join(lines)


def _buttons(plan: Plan, run: RunView) -> ActionsBlock:
    if plan.restores_brain:
        approve = ButtonElement(
            text="Approve brain restore",
            action_id=ActionId.BRAIN_RESTORE_APPROVE,
            value=run.id,
            style="danger",
            confirm=ConfirmObject(
                title="Restore the brain?",
                text="Rows written since the snapshot leave the live brain (they are kept in a forensic copy).",
                confirm="Restore",
                deny="Back",
            ),
        )
    else:
        approve = ButtonElement(text="Roll back", action_id=ActionId.APPROVE, value=run.id, style="primary")
    cancel = ButtonElement(text="Cancel", action_id=ActionId.CANCEL, value=run.id)
    return ActionsBlock(block_id=BlockId.PLAN_ACTIONS, elements=[approve, cancel])


def _answer_buttons(plan: Plan, run: RunView) -> ActionsBlock:
    """Restore from the named snapshot (when there is one) or keep the brain: a question answered in place."""
    brain = plan.brain
    elements = []
    if brain is not None and brain.snapshot is not None:
        rows = f", {brain.loss.total_rows} row(s) leave the live brain" if brain.loss is not None else ""
        elements.append(
            ButtonElement(
                text=_clip(f"Restore from {brain.snapshot.path.name}{rows}", 75),
                action_id=AnswerActionId.RESTORE,
                value=run.id,
                style="danger",
            )
        )
    elements.append(ButtonElement(text="Keep the brain", action_id=AnswerActionId.KEEP, value=run.id))
    elements.append(ButtonElement(text="Cancel", action_id=ActionId.CANCEL, value=run.id))
    return ActionsBlock(block_id=BlockId.PLAN_ACTIONS, elements=elements)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_clip(text, SECTION_LIMIT)))


section = _section  # for the other block builders (check_blocks)


def _message(text: str, blocks: list[Block]) -> Message:
    return Message(_clip(text, 3000), [block.to_dict() for block in blocks[:50]])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _took(seconds: float | None) -> str:
    return f" _({seconds:.1f}s)_" if seconds is not None else ""
