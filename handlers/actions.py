"""The plan's buttons: ack at once, then let the core decide and run, and tell the channel."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.approvals import Decision
from bot.core import Outcome
from handlers.blocks import closed_plan_message, esc, plan_message
from handlers.ids import ActionId
from handlers.progress import SlackProgress
from handlers.services import Services
from storage import RunView

log = logging.getLogger(__name__)


def register(app: App) -> None:
    for action_id in ActionId:
        app.action(action_id.value)(on_click)


def on_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    user = str((body.get("user") or {}).get("id") or "")
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    run_id = action.get("value") if isinstance(action, dict) else None
    if not (user and channel and isinstance(run_id, str) and run_id):
        log.warning("a click without user, channel or run id was ignored")
        return
    seen_on = {"channel": channel, "ts": str((body.get("container") or {}).get("message_ts") or "")}
    services.guarded(channel, user, _decide, run_id, user, channel, ActionId(action["action_id"]), seen_on, runs=True)


def _decide(services: Services, run_id: str, user: str, channel: str, action_id: ActionId,
            seen_on: dict[str, str]) -> None:
    rollbot = services.rollbot

    def progress(run: RunView) -> SlackProgress:
        target = rollbot.config.target(run.target)
        incident = (target.incident_channel if target else None) or channel
        return SlackProgress(services.client, services.outbox, rollbot.run, run, incident,
                             ticket_link=services.ticket_link, remember=rollbot.remember)

    decision = Decision.CANCEL if action_id is ActionId.CANCEL else Decision.CONFIRM
    outcome = rollbot.decide(
        run_id, user, decision, services.directory.members_of, progress,
        confirms_brain_restore=action_id is ActionId.BRAIN_RESTORE_APPROVE, seen_on=seen_on,
    )
    _report(services, outcome, run_id, user, channel)


def _report(services: Services, outcome: Outcome, run_id: str, user: str, channel: str) -> None:
    if outcome.cancelled and outcome.run is not None:
        _close_plan(services, outcome.run, f":no_entry_sign: Cancelled by <@{user}>. Nothing was changed.")
        return
    if outcome.refusal:
        services.tell(channel, user, f":no_entry: {esc(outcome.refusal)}")
    if outcome.replanned is not None:
        old = services.rollbot.run(run_id)
        _close_plan(services, old, ":recycle: Superseded: the facts changed before the click; a fresh plan follows.")
        message = plan_message(outcome.replanned.plan, outcome.replanned.run)
        new_id = outcome.replanned.run.id

        def post() -> None:
            answer = services.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
            services.rollbot.remember(new_id, plan_message={"channel": channel, "ts": answer["ts"]})

        services.outbox.send(post)


def _close_plan(services: Services, run: RunView, note: str) -> None:
    where = run.context.get("plan_message")
    if not where:
        return
    message = closed_plan_message(run, note)
    services.outbox.send(
        lambda: services.client.chat_update(channel=where["channel"], ts=where["ts"], text=message.text, blocks=message.blocks),
        key=f"plan:{run.id}",
    )
