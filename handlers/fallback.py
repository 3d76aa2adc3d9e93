"""What no listener handles, and what a listener failed at: a refusal or an error id, never a
404 or a 500. The app is built with `raise_error_for_unhandled_request`, so Bolt brings every
unhandled request here instead of answering 404, and this is its one error handler.

Unknown commands, buttons and payload types are refused by name. The set of known ones is
whatever listeners are registered: nothing here needs to change when a button is added.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import BoltContext, BoltResponse
from slack_bolt.error import BoltUnhandledRequestError

from bot.errors import report_unexpected
from handlers.inbound import shown
from handlers.services import Services

log = logging.getLogger(__name__)


def on_error(error: Exception, body: dict[str, Any], context: BoltContext) -> BoltResponse:
    if isinstance(error, BoltUnhandledRequestError):
        return _unhandled(body, context.get("services"))
    return _answer(body, report_unexpected(error, "in a Slack listener"))


def _unhandled(body: dict[str, Any], services: Services | None) -> BoltResponse:
    if "command" in body:
        text = (
            f"rollbot refused this command: {shown(str(body['command']))} is not a rollbot command; "
            "rollbot answers `/rollback` (try `/rollback help`)."
        )
    elif body.get("type") == "block_actions":
        action_id = str(body["actions"][0]["action_id"])
        text = f"rollbot refused this click: it has no button {shown(action_id)}; nothing was done."
        if services is not None:
            services.tell(body["channel"]["id"], body["user"]["id"], f":no_entry: {text}")
    else:
        kind = body.get("type")
        text = (
            f"rollbot refused this request: it does not handle {shown(str(kind))} requests; it answers "
            "`/rollback` and the buttons on its own messages."
            if kind
            else "rollbot refused this request: it is not a command or a click rollbot handles."
        )
    log.info("refused an unhandled Slack request: %s", text)
    return _answer(body, text)


def _answer(body: dict[str, Any], text: str) -> BoltResponse:
    if "command" in body:
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
    return BoltResponse(status=200, body={"text": text})
