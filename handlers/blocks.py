"""Block Kit rendering: pure functions from the core's data (plans, journal views) to messages.

Every message is built from slack_sdk's Block Kit models, whose `to_dict()` validates lengths
and shapes, so an invalid message fails here, in tests, rather than at Slack. Text from people
(reasons, versions) is escaped for mrkdwn and clipped to Slack's limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.core.drill import describe_report
from bot.core.outcomes import ServiceState, TargetStatus
from bot.planning.judgement import Call, Judgement
from bot.running.summary import RunSummary
from bot.text import STEP_MARKS, Mark, outcome_label, summary_line, versions
from handlers.ids import BlockId, KnownBadActionId, RecoveryActionId
from storage import KnownBad, RunStatus, RunView, StepStatus

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
    """A Slack user as a mention; a person at rollbot's terminal (`cli:NAME`) by name."""
    if user_id.startswith("cli:"):
        return f"*{esc(user_id[4:])}* (at the terminal)"
    return f"<@{user_id}>" if user_id.startswith(("U", "W")) and user_id.isalnum() else esc(user_id)


def announcement(run: RunView) -> str:
    reason = f" due to {esc(run.reason)}" if run.reason else ""
    approved = f", approved by {user(run.approver)}" if run.approver else ""
    if run.kind == "upgrade":
        return (
            f":arrow_up: Upgrading *{esc(run.target)}* ({esc(run.environment or '?')}) "
            f"`{esc(run.from_version or '?')}` → `{esc(run.to_version)}`{reason} — requested by "
            f"{user(run.requester)}{approved}"
        )
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
    if run.status is RunStatus.SUCCEEDED and RunSummary.from_dict(run.summary).partial:
        head = ":large_orange_circle: done, partial rollback (external effects not rolled back)"
    title = f"{'Upgrade' if run.kind == 'upgrade' else 'Rollback'} of {run.target} to {run.to_version}: {head}"
    blocks: list[Block] = [section(f"*{esc(title)}*\n" + "\n".join(lines))]
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"run `{run.id}`")]))
    return message_of(title, blocks)


def evidence_text(judgement: Judgement) -> str:
    """The evidence block, the same on `/rollback check` and on every plan."""
    icon = {Call.ROLL_BACK: ":red_circle:", Call.UNSURE: ":large_yellow_circle:", Call.DONT: ":large_green_circle:"}
    lines = "\n".join(f"• {esc(line)}" for line in judgement.evidence)
    return f"{icon[judgement.call]} *{esc(judgement.headline)}*\n{lines}"


def final_message(run: RunView, ticket_link: str | None = None, log_lines: Sequence[str] = ()) -> Message:
    """The all-clear, or the failure with where the service is; a failure also shows the error
    lines of the replaced version's logs (the whole log is in the thread)."""
    if run.status is RunStatus.SUCCEEDED and RunSummary.from_dict(run.summary).errors_persist:
        text = f":large_yellow_circle: *Healthy but errors persist:* {esc(summary_line(run))}"
    elif run.status is RunStatus.SUCCEEDED and RunSummary.from_dict(run.summary).partial:
        text = f":large_orange_circle: *Partial rollback:* {esc(summary_line(run))}"
    elif run.status is RunStatus.SUCCEEDED:
        text = f":large_green_circle: *All clear:* {esc(summary_line(run))}"
    else:
        text = f":red_circle: *{'Upgrade' if run.kind == 'upgrade' else 'Rollback'} {esc(run.status.value)}:* {esc(summary_line(run))}"
    if ticket_link:
        text += f"\n:memo: Postmortem: {ticket_link}"
    blocks: list[Block] = [section(text)]
    if run.kind == "rollback" and run.status is RunStatus.SUCCEEDED and run.from_version:
        blocks.append(
            ActionsBlock(
                block_id=BlockId.KNOWN_BAD_ACTIONS,
                elements=[
                    ButtonElement(
                        text=clip(f"Clear {run.from_version} for deployment…", 75),
                        action_id=KnownBadActionId.CLEAR,
                        value=run.id,
                    )
                ],
            )
        )
    if log_lines:
        shown = clip("\n".join(log_lines), SECTION_LIMIT - 120)
        blocks.append(
            section(f":scroll: *Error lines in the logs of {esc(run.from_version or '?')}:*\n```{esc(shown)}```")
        )
    return message_of(summary_line(run), blocks)


def interruption_message(run: RunView, state: ServiceState) -> Message:
    """An interrupted run, for the incident channel: where it stopped, what the service looks like
    now, and the two ways on. The buttons carry the run id; the core checks who clicks."""
    done = [step.name for step in run.steps if step.status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED)]
    title = f"{'Upgrade' if run.kind == 'upgrade' else 'Rollback'} of {run.target} to {run.to_version} was interrupted"
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
        section("\n".join(lines)),
        buttons,
        ContextBlock(elements=[MarkdownTextObject(text=f"run `{run.id}`")]),
    ]
    return message_of(f"{title} during step {run.current_step}: {state.describe()}", blocks)


def closed_interruption_message(run: RunView, note: str) -> Message:
    """The report once someone resumed or aborted the run: no buttons left to click."""
    title = f"Rollback of {run.target} to {run.to_version} was interrupted during step {run.current_step or 'start'}"
    return message_of(
        f"{title}: {note}",
        [
            section(f":warning: *{esc(title)}*\n{note}"),
            ContextBlock(elements=[MarkdownTextObject(text=f"run `{run.id}`")]),
        ],
    )


def drill_report_message(drill: RunView) -> Message:
    """A drill's report: each phase's time, the rollback's steps, and the change against the last drill."""
    lines = describe_report(drill)
    icon = ":white_check_mark:" if drill.status is RunStatus.SUCCEEDED else ":x:"
    body = f"{icon} *{esc(lines[0])}*\n```" + esc("\n".join(lines[1:])) + "```"
    return message_of(
        lines[0], [section(body), ContextBlock(elements=[MarkdownTextObject(text=f"drill `{drill.id}`")])]
    )


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
        bad = "".join(f"\n:no_entry: {esc(line)}" for line in status.known_bad)
        blocks.append(
            section(
                f"*{esc(status.name)}* ({esc(status.environment)}): `{esc(status.running_version or '?')}` "
                f"({esc(status.container_state)}) — {health}\n{snapshot}{busy}{kept}{bad}"
            )
        )
    return message_of("rollbot status", blocks[:50] or [section("no targets are configured")])


def history_message(runs: list[RunView], known_bad: Sequence[KnownBad] = ()) -> Message:
    marks = [section("*Known-bad versions*\n" + "\n".join(f"• {esc(m.describe())}" for m in known_bad[:20]))]
    if not runs:
        return message_of("no runs yet", [section("No runs yet."), *(marks if known_bad else [])])
    lines = [
        f"`{run.id}` {run.created_at:%Y-%m-%d %H:%M} UTC · *{esc(run.target)}* {esc(versions(run))}"
        f" · {esc(outcome_label(run))}"
        + (f" at `{esc(run.current_step)}`" if run.status in (RunStatus.FAILED, RunStatus.INTERRUPTED) else "")
        + f" · {user(run.requester)}"
        for run in runs
    ]
    return message_of("rollbot history", [section("*History*\n" + "\n".join(lines)), *(marks if known_bad else [])])


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_LIMIT)))


def message_of(text: str, blocks: list[Block]) -> Message:
    return Message(clip(text, 3000), [block.to_dict() for block in blocks[:50]])


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _took(seconds: float | None) -> str:
    return f" _({seconds:.1f}s)_" if seconds is not None else ""
