"""The Clear button on a rollback's all-clear: the version it left is known-bad ("root cause first")
until someone clears it with a reason. The click opens a small modal on its trigger (right after the
ack); the submission asks the core to clear, and the channel is told who cleared it and why.
`/rollback clear TARGET VERSION reason…` (handlers/commands.py) does the same from a command."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View

from handlers.blocks import esc
from handlers.ids import ClearFormBlock, KnownBadActionId, ViewId
from handlers.services import Services

log = logging.getLogger(__name__)
MAX_REASON = 500


def register(app: App) -> None:
    app.action(KnownBadActionId.CLEAR.value)(on_clear_click)
    app.view(ViewId.KNOWN_BAD_CLEAR.value)(on_clear_submitted)


def on_clear_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    user = str((body.get("user") or {}).get("id") or "")
    channel = str((body.get("channel") or {}).get("id") or "")
    trigger, run_id = str(body.get("trigger_id") or ""), str(action.get("value") or "")
    if not (user and channel and run_id):
        log.warning("a known-bad clear click without user, channel or run was ignored")
        return
    if not trigger:
        services.tell(
            channel, user, "Slack sent no trigger to open the form with; use `/rollback clear TARGET VERSION reason`."
        )
        return
    services.guarded(channel, user, _open, trigger, run_id, user, channel)


def _open(services: Services, trigger: str, run_id: str, user: str, channel: str) -> None:
    run = services.rollbot.run(run_id)
    verdict = services.rollbot.may_request(user, run.target, services.directory.members_of)
    if not verdict.allowed:
        services.tell(channel, user, f":no_entry: {esc(verdict.reason)}.")
        return
    version = run.from_version or "?"
    view = View(
        type="modal",
        callback_id=ViewId.KNOWN_BAD_CLEAR,
        title="Clear known-bad version",
        submit="Clear",
        close="Cancel",
        private_metadata=json.dumps({"target": run.target, "version": version, "channel": channel}),
        blocks=[
            SectionBlock(
                text=f"*{esc(run.target)} {esc(version)}* was rolled back by run `{esc(run.id)}` and is refused "
                "until its root cause is known. Clearing lets it be deployed again."
            ),
            InputBlock(
                block_id=ClearFormBlock.REASON,
                label="Root cause, and why it may run again",
                element=PlainTextInputElement(action_id=ClearFormBlock.REASON, multiline=True, max_length=MAX_REASON),
            ),
        ],
    )
    services.poster.open_view(trigger, view.to_dict())


def on_clear_submitted(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """A reason is required; the clear itself runs after the ack, and its answer goes to the channel."""
    services: Services = context["services"]
    user = str((body.get("user") or {}).get("id") or "")
    view = body.get("view") or {}
    field = (
        ((view.get("state") or {}).get("values") or {}).get(ClearFormBlock.REASON, {}).get(ClearFormBlock.REASON, {})
    )
    reason = " ".join(str(field.get("value") or "").split())
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        target, version, channel = str(meta["target"]), str(meta["version"]), str(meta["channel"])
    except (ValueError, KeyError, TypeError):
        ack(
            response_action="errors",
            errors={ClearFormBlock.REASON: "this form was not made by rollbot; clear with /rollback clear"},
        )
        return
    if not reason:
        ack(response_action="errors", errors={ClearFormBlock.REASON: "say why it may run again: the root cause"})
        return
    ack()
    services.guarded(channel, user, _clear, target, version, user, reason, channel)


def _clear(services: Services, target: str, version: str, user: str, reason: str, channel: str) -> None:
    verdict = services.rollbot.may_request(user, target, services.directory.members_of)
    if not verdict.allowed:
        services.tell(channel, user, f":no_entry: {esc(verdict.reason)}.")
        return
    cleared = services.rollbot.clear_known_bad(target, version, user, reason)
    text = (
        f":white_check_mark: <@{user}> cleared {esc(version)} of {esc(target)} for deployment: {esc(reason)} "
        f"(it was rolled back by run(s) {', '.join(f'`{mark.run_id}`' for mark in cleared)})."
    )
    services.outbox.send(lambda: services.poster.post(channel, text), lane=f"channel:{channel}")
