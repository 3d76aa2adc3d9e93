"""The "plan the rollback" button on a `/rollback check` verdict: ack, then one call into the core.

The button plans the rollback exactly as `/rollback TARGET VERSION` would, as the person who
clicked: who may ask is checked again, and the plan shows the same evidence and still needs its
own confirmation. (`/rollback check` itself is parsed and acked in handlers/commands.py.)
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.planning.plan import RollbackRequest
from handlers.blocks import esc
from handlers.commands import post_plan
from handlers.ids import CheckActionId
from handlers.services import Services

log = logging.getLogger(__name__)


def register(app: App) -> None:
    app.action(CheckActionId.PLAN.value)(on_plan_click)


def on_plan_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    ack()
    services: Services = context["services"]
    user = str((body.get("user") or {}).get("id") or "")
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    target, _, version = str(action.get("value") or "").partition(" ")
    if not (user and channel and target and version):
        log.warning("a check's plan click without user, channel, target or version was ignored")
        return
    services.guarded(channel, user, _plan, target, version, user, channel)


def _plan(services: Services, target: str, version: str, user: str, channel: str) -> None:
    verdict = services.rollbot.may_request(user, target, services.directory.members_of)
    if not verdict.allowed:
        services.tell(channel, user, f":no_entry: {esc(verdict.reason)}.")
        return
    post_plan(services, RollbackRequest(target, version, user, "recommended by /rollback check"), channel)
