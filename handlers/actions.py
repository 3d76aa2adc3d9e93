"""The plan's buttons: ack at once, then let the core decide and run, and tell the channel."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.core.outcomes import Outcome, Recovery
from bot.planning.approvals import Decision
from bot.planning.brain_plan import BrainChoice
from handlers.blocks import esc
from handlers.ids import ActionId, AnswerActionId, ExpiredPlanActionId, RecoveryActionId
from handlers.plan_blocks import closed_plan_message
from handlers.services import Services
from storage import RunView

log = logging.getLogger(__name__)


def register(app: App) -> None:
    for action_id in ActionId:
        app.action(action_id.value)(on_click)
    for recovery_id in RecoveryActionId:
        app.action(recovery_id.value)(on_recovery_click)
    for answer_id in AnswerActionId:
        app.action(answer_id.value)(on_answer_click)
    app.action(ExpiredPlanActionId.PLAN_AGAIN.value)(on_plan_again_click)


def on_plan_again_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    """ "Plan again" on an expired plan: the same request, planned afresh, posted below it."""
    ack()
    services: Services = context["services"]
    user, channel, run_id = _click(body, action)
    if run_id is not None:
        services.guarded(channel, user, _plan_again, run_id, user, channel, _seen_on(body, channel))


def _plan_again(services: Services, run_id: str, user: str, channel: str, seen_on: dict[str, str]) -> None:
    outcome = services.rollbot.replan(run_id, user, services.directory.members_of, seen_on=seen_on)
    if outcome.refusal or outcome.replanned is None:
        services.tell(channel, user, f":no_entry: {esc(outcome.refusal or 'nothing was done')}")
        return
    old = services.rollbot.run(run_id)
    _close_plan(services, old, f":hourglass: Expired — planned again by <@{user}> below.")
    services.post_plan(outcome.replanned, channel)


def on_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    user, channel, run_id = _click(body, action)
    if run_id is not None:
        services.guarded(
            channel,
            user,
            _decide,
            run_id,
            user,
            channel,
            ActionId(action["action_id"]),
            _seen_on(body, channel),
            runs=True,
        )


def on_recovery_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    """Resume or Abort on an "interrupted run" report."""
    ack()
    services: Services = context["services"]
    user, channel, run_id = _click(body, action)
    if run_id is not None:
        recovery = Recovery.RESUME if action["action_id"] == RecoveryActionId.RESUME else Recovery.ABORT
        services.guarded(channel, user, _take_up, run_id, user, channel, recovery, _seen_on(body, channel), runs=True)


def on_answer_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    """Restore or Keep on a plan that asked about the brain: a fresh plan replaces it in place."""
    ack()
    services: Services = context["services"]
    user, channel, run_id = _click(body, action)
    if run_id is not None:
        choice = BrainChoice.RESTORE if action["action_id"] == AnswerActionId.RESTORE else BrainChoice.KEEP
        services.guarded(channel, user, _answer, run_id, user, channel, choice, _seen_on(body, channel))


def _click(body: dict[str, Any], action: object) -> tuple[str, str, str | None]:
    """Who clicked, where, and the run id the button carries (None when any is missing)."""
    user = str((body.get("user") or {}).get("id") or "")
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    run_id = action.get("value") if isinstance(action, dict) else None
    if not (user and channel and isinstance(run_id, str) and run_id):
        log.warning("a click without user, channel or run id was ignored")
        return user, channel, None
    return user, channel, run_id


def _seen_on(body: dict[str, Any], channel: str) -> dict[str, str]:
    """The message the button was clicked on: a click acts only on the run shown there."""
    return {"channel": channel, "ts": str((body.get("container") or {}).get("message_ts") or "")}


def _decide(
    services: Services, run_id: str, user: str, channel: str, action_id: ActionId, seen_on: dict[str, str]
) -> None:
    decision = Decision.CANCEL if action_id is ActionId.CANCEL else Decision.CONFIRM
    outcome = services.rollbot.decide(
        run_id,
        user,
        decision,
        services.directory.members_of,
        services.progress_for(channel),
        confirms_brain_restore=action_id is ActionId.BRAIN_RESTORE_APPROVE,
        seen_on=seen_on,
    )
    _report(services, outcome, run_id, user, channel)


def _take_up(
    services: Services, run_id: str, user: str, channel: str, recovery: Recovery, seen_on: dict[str, str]
) -> None:
    outcome = services.rollbot.take_up(
        run_id, user, recovery, services.directory.members_of, services.progress_for(channel), seen_on=seen_on
    )
    if outcome.refusal:
        services.tell(channel, user, f":no_entry: {esc(outcome.refusal)}")


def _answer(
    services: Services, run_id: str, user: str, channel: str, choice: BrainChoice, seen_on: dict[str, str]
) -> None:
    outcome = services.rollbot.answer(run_id, user, choice, services.directory.members_of, seen_on=seen_on)
    if outcome.refusal or outcome.replanned is None:
        services.tell(channel, user, f":no_entry: {esc(outcome.refusal or 'nothing was done')}")
        return
    fresh = outcome.replanned
    message = services.plan_message(fresh)
    where = {"channel": seen_on["channel"], "ts": seen_on["ts"]}

    def replace_in_place() -> None:
        services.poster.update(where["channel"], where["ts"], message)
        services.rollbot.remember(fresh.run.id, plan_message=where)
        services.watch_plan(fresh, where)

    services.outbox.send(replace_in_place, key=f"plan:{run_id}", lane=f"channel:{where['channel']}", run_id=run_id)


def _report(services: Services, outcome: Outcome, run_id: str, user: str, channel: str) -> None:
    if outcome.cancelled and outcome.run is not None:
        _close_plan(services, outcome.run, f":no_entry_sign: Cancelled by <@{user}>. Nothing was changed.")
        return
    if outcome.refusal:
        services.tell(channel, user, f":no_entry: {esc(outcome.refusal)}")
    if outcome.follow_up is not None:  # an upgrade that went wrong: its rollback, ready to approve
        services.post_plan(outcome.follow_up, channel)
    if outcome.replanned is not None:
        old = services.rollbot.run(run_id)
        _close_plan(services, old, ":recycle: Superseded: the facts changed before the click; a fresh plan follows.")
        services.post_plan(outcome.replanned, channel)


def _close_plan(services: Services, run: RunView, note: str) -> None:
    where = run.context.get("plan_message")
    if not where:
        return
    message = closed_plan_message(run, note)
    services.outbox.send(
        lambda: services.poster.update(where["channel"], where["ts"], message),
        key=f"plan:{run.id}",
        lane=f"channel:{where['channel']}",
        run_id=run.id,
    )
