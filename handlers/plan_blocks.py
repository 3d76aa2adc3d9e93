"""Block Kit of a plan: the plan message with its buttons, and the plan once decided or expired.

Pure functions, like handlers/blocks.py, whose helpers they use. A plan that needs an approval
names the approvers (users, or a user group as `<!subteam^…>`, which notifies its members);
the buttons of a production plan ask for confirmation, naming the versions and, for a brain
restore, the rows that leave the live brain.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
)

from bot.planning.plan import Plan
from bot.text import CHECK_MARKS, affected_counts, affected_text, external_lines
from handlers.blocks import EMOJI, Message, clip, esc, evidence_text, message_of, section, user
from handlers.ids import ActionId, AnswerActionId, BlockId, ExpiredPlanActionId
from storage import RunView


def plan_message(plan: Plan, run: RunView, approvers: Sequence[str] = ()) -> Message:
    """The plan, its checks and steps, and its buttons; `approvers` (the target's) are called by
    name when the plan needs one of them."""
    request = plan.request
    title = f"{'Upgrade' if plan.upgrades else 'Rollback'} plan: {request.target} → {request.version}"
    lines = [
        f"*{esc(request.target)}* ({esc(plan.environment or '?')}): "
        f"`{esc(plan.running_version or '?')}` → `{esc(request.version)}`",
        f"Requested by {user(request.requester)}" + (f" — due to {esc(request.reason)}" if request.reason else ""),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=clip(title, 150)),
        section("\n".join(lines)),
        section(
            "*Preflight*\n"
            + "\n".join(
                f"{EMOJI[CHECK_MARKS[check.result]]} *{esc(check.name)}*: {esc(check.detail)}" for check in plan.checks
            )
        ),
    ]
    if plan.brain is not None and plan.brain.snapshot is not None and (plan.restores_brain or plan.brain.asking):
        blocks.append(section(_brain_text(plan)))
    if plan.external is not None:
        head, *calls = external_lines(plan.external)
        icon = ":warning:" if plan.external.count else ":white_check_mark:"
        blocks.append(
            section(f"{icon} *External effects not rolled back:* {esc(head)}" + "".join(f"\n• {esc(c)}" for c in calls))
        )
    if plan.kept is not None and plan.kept.warning:
        blocks.append(section(f":warning: *Earlier versions:* {esc(plan.kept.warning)}"))
    if plan.judgement is not None:
        blocks.append(section(evidence_text(plan.judgement)))
    if plan.rehearsal is not None:
        icon = ":warning:" if plan.rehearsal.warning else ":stopwatch:"
        text = plan.rehearsal.describe() + (
            f" — {plan.rehearsal.warning}"
            if plan.rehearsal.warning and plan.rehearsal.expected_seconds is not None
            else ""
        )
        blocks.append(section(f"{icon} *Drills:* {esc(text)}"))
    if plan.approvable:
        blocks.append(
            section(
                "*Steps*\n"
                + "\n".join(
                    f"{number}. {esc(step.description)}"
                    + (f" _(skipped: {esc(step.skip_reason)})_" if step.skip_reason else "")
                    for number, step in enumerate(plan.steps, 1)
                )
            )
        )
        if plan.restores_brain and approvers:
            blocks.append(section(approver_call(approvers)))
        blocks.append(_buttons(plan, run))
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"run `{run.id}` · the plan expires if not confirmed in time")]
            )
        )
    elif plan.question:
        blocks.append(section(f":question: *Restore the brain or keep it?* {esc(plan.question)}"))
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
        blocks.append(section(f":no_entry: *Refused:* {esc(plan.refusal)}\nNothing was changed."))
    return message_of(title, blocks)


def closed_plan_message(run: RunView, note: str) -> Message:
    """The plan message after its decision: buttons gone, who decided what."""
    title = f"{'Upgrade' if run.kind == 'upgrade' else 'Rollback'} plan: {run.target} → {run.to_version}"
    blocks: list[Block] = [
        HeaderBlock(text=clip(title, 150)),
        section(
            f"*{esc(run.target)}*: `{esc(run.from_version or '?')}` → `{esc(run.to_version)}` — requested by "
            f"{user(run.requester)}" + (f" — due to {esc(run.reason)}" if run.reason else "")
        ),
        section(note),
        ContextBlock(elements=[MarkdownTextObject(text=f"run `{run.id}`")]),
    ]
    return message_of(f"{title}: {note}", blocks)


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
        lines += [f"• {esc(table.describe())}" for table in brain.loss.tables if table.undone or table.lost_columns]
        who = affected_text(brain.loss)
        if who:
            lines.append(f":busts_in_silhouette: {esc(who)}")
    return "\n".join(lines)


def mention(entry: str) -> str:
    """A user id as `<@U…>`, a user group id as `<!subteam^S…>` (which notifies its members)."""
    if entry.startswith("S") and entry.isalnum():
        return f"<!subteam^{entry}>"
    return user(entry)


def approver_call(approvers: Sequence[str]) -> str:
    named = ", ".join(mention(entry) for entry in approvers)
    return f":bell: *Approval needed* from one of {named} (not the requester): a brain restore loses data."


def _confirm_text(plan: Plan) -> str:
    """What the confirmation dialog says: the versions, what stays done outside (first: it must
    fit), and for a restore the rows that leave and whose they are."""
    text = f"{plan.request.target} ({plan.environment or '?'}): {plan.running_version or '?'} → {plan.request.version}."
    if plan.external is not None and plan.external.count:
        text += f" {plan.external.count} external effect(s) stay done: a partial rollback."
    brain = plan.brain
    if plan.restores_brain and brain is not None and brain.snapshot is not None:
        text += f" The brain is restored from {brain.snapshot.path.name}"
        if brain.loss is not None:
            leaving = ", ".join(f"{t.table} {t.rows}" for t in brain.loss.tables if t.rows)
            text += f"; {brain.loss.total_rows} row(s) leave the live brain ({leaving or 'none added'})"
            who = affected_counts(brain.loss)
            text += f"; affected: {who}" if who else ""
        text += "; they are kept in a forensic copy."
    return clip(text, 300)


def _buttons(plan: Plan, run: RunView) -> ActionsBlock:
    production = plan.environment == "production"
    if plan.restores_brain:
        approve = ButtonElement(
            text="Approve brain restore",
            action_id=ActionId.BRAIN_RESTORE_APPROVE,
            value=run.id,
            style="danger",
            confirm=ConfirmObject(
                title="Restore the brain?", text=_confirm_text(plan), confirm="Restore", deny="Back", style="danger"
            ),
        )
    else:
        confirm = None
        verb = "Upgrade" if plan.upgrades else "Roll back"  # the same action id: confirming the plan
        if production:
            confirm = ConfirmObject(
                title=clip(f"{verb} {plan.request.target}?", 24),
                text=_confirm_text(plan),
                confirm=verb,
                deny="Back",
            )
        approve = ButtonElement(text=verb, action_id=ActionId.APPROVE, value=run.id, style="primary", confirm=confirm)
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
                text=clip(f"Restore from {brain.snapshot.path.name}{rows}", 75),
                action_id=AnswerActionId.RESTORE,
                value=run.id,
                style="danger",
            )
        )
    elements.append(ButtonElement(text="Keep the brain", action_id=AnswerActionId.KEEP, value=run.id))
    elements.append(ButtonElement(text="Cancel", action_id=ActionId.CANCEL, value=run.id))
    return ActionsBlock(block_id=BlockId.PLAN_ACTIONS, elements=elements)


def expired_plan_message(run: RunView, ttl_minutes: float) -> Message:
    """A plan nobody confirmed in time, edited in place: its buttons replaced by one that plans
    the same request again (a fresh plan, checked against the facts of now)."""
    note = (
        f":hourglass: *Expired — plan again.* Nobody confirmed it within {ttl_minutes:g} minutes; nothing was changed."
    )
    closed = closed_plan_message(run, note)
    again = ActionsBlock(
        block_id=BlockId.PLAN_ACTIONS,
        elements=[
            ButtonElement(text="Plan again", action_id=ExpiredPlanActionId.PLAN_AGAIN, value=run.id, style="primary")
        ],
    )
    blocks = [*closed.blocks[:-1], again.to_dict(), closed.blocks[-1]]
    return Message(closed.text, blocks)
