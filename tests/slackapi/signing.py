"""Requests exactly as Slack sends them to an app: slash commands and button clicks, form-encoded
and signed with the app's signing secret, so a test drives the real HTTP endpoint (Bolt's
signature check included) instead of calling handler functions.

    body = slash_command("rollback engine", user_id="U0ALICE01", channel_id="C0123ABCD",
                         response_url=slack.response_url("r1"))
    reply = post(app_url + "slack/events", body, signed_headers(body, SIGNING_SECRET))
    assert reply.status == 200 and reply.elapsed < 3.0      # Slack gives up after 3 s

Field names and nesting follow Slack's own shape samples (java-slack-sdk json-logs
`app-backend/SlashCommandPayload.json` and `BlockActionPayload.json`); values are
Slack-shaped ids rather than the samples' empty placeholders.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any, NamedTuple
from urllib.parse import urlencode

import httpx

FORM = "application/x-www-form-urlencoded"
TEAM_ID = "T0ROLLBOT"
TEAM_DOMAIN = "example"
APP_ID = "A0ROLLBOT"
VERIFICATION_TOKEN = "verification-token-unused"  # deprecated by Slack, still sent


def new_trigger_id() -> str:
    """A fresh trigger_id in Slack's "<digits>.<digits>.<hex>" form."""
    return f"{int(time.time())}{secrets.randbelow(10**6):06d}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def slash_command(text: str, user_id: str, channel_id: str, response_url: str, **options: str | None) -> str:
    """The form body Slack POSTs for a slash command (options: see `slash_command_fields`)."""
    return urlencode(slash_command_fields(text, user_id, channel_id, response_url, **options))


def slash_command_fields(
    text: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    *,
    command: str = "/rollback",
    user_name: str | None = None,
    channel_name: str | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
    trigger_id: str | None = None,
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
) -> dict[str, str]:
    """The fields of a slash command, in Slack's order: form-encoded in HTTP mode, the JSON
    `payload` of a `slash_commands` envelope in Socket Mode. enterprise_id and enterprise_name
    are only sent by Enterprise Grid workspaces, so only when given here."""
    fields: dict[str, str] = {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
    }
    if enterprise_id is not None:
        fields["enterprise_id"] = enterprise_id
        fields["enterprise_name"] = enterprise_name or ""
    fields.update(
        {
            "channel_id": channel_id,
            "channel_name": channel_name or channel_id.lower(),
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or new_trigger_id(),
        }
    )
    return fields


def block_action(
    action_id: str, value: str, user_id: str, channel_id: str, message_ts: str, response_url: str, **options: Any
) -> str:
    """The form body Slack POSTs when a button is clicked: `payload=<json>` of a block_actions
    payload (options: see `block_action_payload`)."""
    payload = block_action_payload(action_id, value, user_id, channel_id, message_ts, response_url, **options)
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def block_action_payload(
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    response_url: str,
    *,
    block_id: str | None = None,
    button_text: str = "Button",
    message: dict[str, Any] | None = None,
    is_ephemeral: bool = False,
    user_name: str | None = None,
    channel_name: str | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
    trigger_id: str | None = None,
    action_ts: str | None = None,
) -> dict[str, Any]:
    """The block_actions payload of a button click: form-encoded as `payload=<json>` in HTTP
    mode, the `payload` of an `interactive` envelope in Socket Mode. `message` is the message
    that carried the button (e.g. one from FakeSlack.messages()); Slack sends no `message` for a
    button on an ephemeral message."""
    name = user_name or user_id.lower()
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name or channel_id.lower()},
    }
    if not is_ephemeral:
        shown = dict(message or {"type": "message", "text": ""})
        shown["ts"] = message_ts
        payload["message"] = shown
    payload["state"] = {"values": {}}
    payload["response_url"] = response_url
    payload["actions"] = [
        {
            "action_id": action_id,
            "block_id": block_id or secrets.token_hex(3),
            "text": {"type": "plain_text", "text": button_text, "emoji": True},
            "value": value,
            "type": "button",
            "action_ts": action_ts or f"{time.time():.6f}",
        }
    ]
    return payload


def signature(body: str | bytes, signing_secret: str, timestamp: int | str) -> str:
    """Slack's v0 signature: "v0=" + hex HMAC-SHA256 of "v0:{timestamp}:{body}"."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: str | bytes, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends with a signed request; timestamp defaults to now (Bolt refuses ones
    more than 5 minutes old, so pass an old one to test that)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(body, signing_secret, ts),
    }


class Reply(NamedTuple):
    """What the app answered: HTTP status, body text, seconds until the answer arrived."""

    status: int
    body: str
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


def post(url: str, body: str | bytes, headers: dict[str, str], timeout: float = 10.0) -> Reply:
    """POST the body byte for byte (the signature covers the exact bytes) and time the answer."""
    raw = body.encode() if isinstance(body, str) else body
    with httpx.Client(timeout=timeout) as client:
        started = time.monotonic()
        response = client.post(url, content=raw, headers=headers)
        elapsed = time.monotonic() - started
    return Reply(response.status_code, response.text, elapsed)


def view_submission(
    user_id: str, view: dict[str, Any], values: dict[str, dict[str, dict[str, Any]]], **options: Any
) -> str:
    """The form body Slack POSTs when a modal is submitted: `payload=<json>` of a view_submission
    payload, its `view` the one that was opened (as FakeSlack.views() keeps it) with the
    person's input in `state.values` (block id -> action id -> value or selected_option)."""
    payload = view_submission_payload(user_id, view, values, **options)
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def view_submission_payload(
    user_id: str,
    view: dict[str, Any],
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """Field names and nesting of Slack's `ViewSubmissionPayload.json` sample."""
    name = user_id.lower()
    shown = {
        key: view[key]
        for key in ("type", "title", "submit", "close", "blocks", "private_metadata", "callback_id")
        if key in view
    }
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": new_trigger_id(),
        "view": {
            "id": view.get("id", "V00000001"),
            "team_id": team_id,
            **shown,
            "external_id": "",
            "state": {"values": values},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": view.get("id", "V00000001"),
            "previous_view_id": None,
            "app_id": api_app_id,
            "app_installed_team_id": team_id,
            "bot_id": "B0ROLLBOT",
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
