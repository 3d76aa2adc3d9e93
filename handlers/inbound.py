"""What Slack POSTs to `/slack/events`, read into the few checked fields rollbot uses.

Every field of a request is treated as hostile: missing, of the wrong type, huge, or not
what Slack would send, nested thousands of levels deep. Reading is pure: bytes in, either a
`Checked` body or a `Refusal` that names the field and what is wrong with it. It runs only on a
body whose signature the door in handlers/server.py has verified. Only checked bodies reach Bolt, re-encoded
as JSON, so no listener (and no Bolt internal) ever sees a field it did not expect, and a
slash command whose text contains the word "payload" is not mistaken for a click (Bolt's own
form parser looks for that substring anywhere in the body).

    slash command   form fields: command, text, user_id, channel_id, response_url, ...
    interactivity   form field `payload`: JSON of a block_actions payload (a button click) or
                    of a view_submission (the `/rollback` form: its callback id, metadata and
                    the typed or picked values); other payload types keep only their `type`,
                    so Bolt can refuse them by name
    Events API      a JSON body; `url_verification` is answered and `app_home_opened` (who opened
                    rollbot's App Home) is kept; other events keep only their `type`
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,31}")
MESSAGE_TS = re.compile(r"\d{1,12}\.\d{1,9}")
URL = re.compile(r"https?://[!-~]{1,2048}")
MAX_ACTION_ID = 255  # Slack's limit for a button's action_id
MAX_VALUE = 2000  # and for its value
MAX_SHORT = 255  # team ids, trigger ids, block ids, type names: far below this in practice
SHOWN = 40


@dataclass(frozen=True)
class Refusal:
    """Why a request is not acted on, for the person who sent it. `user` and `channel` are set
    when the request named them validly, so the refusal can also reach them in Slack."""

    text: str
    slash_command: bool = False
    user: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class Checked:
    """A body made only of checked fields, for Bolt to route."""

    body: dict[str, Any]


class _Bad(ValueError):
    """One field is wrong; the message names it."""


def read(raw: bytes, content_type: str) -> Checked | Refusal:
    """Read a request body as Slack sends it. Never raises."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return Refusal(f"rollbot refused this request: the body is not UTF-8 text (byte {error.start})")
    if content_type.split(";")[0].strip().lower() == "application/json":
        return _events_api(text)
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in fields:
        return _interactivity(fields["payload"])
    if "command" in fields:
        return _slash_command(fields)
    if fields.get("ssl_check") == "1":
        return Checked({"ssl_check": "1"})
    return Refusal(
        "rollbot refused this request: the form has neither `command` (a slash command) nor `payload` (a button click)"
    )


def _slash_command(fields: dict[str, str]) -> Checked | Refusal:
    try:
        command = {
            "command": _string(fields, "command", MAX_SHORT),
            "text": fields.get("text", ""),
            "user_id": _matching(fields, "user_id", USER_ID, "a Slack user id"),
            "channel_id": _matching(fields, "channel_id", CHANNEL_ID, "a Slack channel id"),
            "response_url": _matching(fields, "response_url", URL, "an http(s) URL"),
        }
    except _Bad as bad:
        user, channel = fields.get("user_id"), fields.get("channel_id")
        return Refusal(
            f"rollbot refused this command: {bad}",
            slash_command=True,
            user=user if _fits(user, USER_ID) else None,
            channel=channel if _fits(channel, CHANNEL_ID) else None,
        )
    return Checked({**command, **_optional(fields, ("team_id", "trigger_id", "user_name", "channel_name"))})


def _interactivity(payload_text: str) -> Checked | Refusal:
    try:
        payload = _json(payload_text, "`payload`")
    except _Bad as bad:
        return Refusal(f"rollbot refused this request: {bad}")
    if not isinstance(payload, dict):
        return Refusal(f"rollbot refused this request: `payload` is {_json_type(payload)}, not an object")
    try:
        kind = _string(payload, "type", MAX_SHORT, where="payload.")
    except _Bad as bad:
        return Refusal(f"rollbot refused this request: {bad}")
    if kind == "view_submission":
        return _submission(payload)
    if kind != "block_actions":
        return Checked({"type": kind})
    return _click(payload)


MAX_METADATA = 3000  # Slack's limit for a view's private_metadata
MAX_FIELDS = 20  # the form has four; anything far beyond is not rollbot's form


def _submission(payload: dict[str, Any]) -> Checked | Refusal:
    """A submitted form: who, which form (callback_id), its metadata and each field's value."""
    user = _nested(payload, "user", "id")
    valid_user = user if _fits(user, USER_ID) else None
    view = payload.get("view")
    try:
        if valid_user is None:
            raise _Bad(_problem("user.id", user, "a Slack user id"))
        if not isinstance(view, dict):
            raise _Bad(_problem("view", view, "a view object"))
        checked_view = {
            "id": _string(view, "id", MAX_SHORT, where="view."),
            "type": "modal",
            "callback_id": _string(view, "callback_id", MAX_SHORT, where="view."),
            "private_metadata": _bounded(view.get("private_metadata"), "view.private_metadata", MAX_METADATA),
            "state": {"values": _form_values(view.get("state"))},
        }
    except _Bad as bad:
        return Refusal(f"rollbot refused this form: {bad}", user=valid_user)
    body: dict[str, Any] = {"type": "view_submission", "user": {"id": valid_user}, "view": checked_view}
    team = _nested(payload, "team", "id")
    if isinstance(team, str) and len(team) <= MAX_SHORT:
        body["team"] = {"id": team}
    return Checked(body)


def _form_values(state: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """`state.values`: block id -> action id -> the typed `value` or the picked option's value."""
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict) or len(values) > MAX_FIELDS:
        raise _Bad(_problem("view.state.values", values, "the form's values"))
    checked: dict[str, dict[str, dict[str, Any]]] = {}
    for block_id, actions in values.items():
        if not isinstance(actions, dict) or len(block_id) > MAX_SHORT or len(actions) > MAX_FIELDS:
            raise _Bad(f"`view.state.values.{shown(str(block_id))}` is not a form field")
        for action_id, field in actions.items():
            where = f"view.state.values.{block_id}.{action_id}"
            if not isinstance(field, dict) or len(action_id) > MAX_SHORT:
                raise _Bad(_problem(where, field, "a form field"))
            kind = _string(field, "type", MAX_SHORT, where=where + ".")
            entry: dict[str, Any] = {"type": kind}
            if field.get("value") is not None:
                entry["value"] = _bounded(field["value"], where + ".value", MAX_VALUE)
            option = field.get("selected_option")
            if isinstance(option, dict):
                entry["selected_option"] = {
                    "value": _bounded(option.get("value"), where + ".selected_option", MAX_VALUE)
                }
            checked.setdefault(block_id, {})[action_id] = entry
    return checked


def _bounded(value: Any, key: str, limit: int) -> str:
    """An optional string field: absent is empty; anything but a string, or too long, is refused."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Bad(_problem(key, value, "a string"))
    if len(value) > limit:
        raise _Bad(f"`{key}` is {len(value)} characters long; at most {limit}")
    return value


def _click(payload: dict[str, Any]) -> Checked | Refusal:
    user = _nested(payload, "user", "id")
    channel = _nested(payload, "channel", "id") or _nested(payload, "container", "channel_id")
    valid_user = user if _fits(user, USER_ID) else None
    valid_channel = channel if _fits(channel, CHANNEL_ID) else None
    try:
        if valid_user is None:
            raise _Bad(_problem("user.id", user, "a Slack user id"))
        if valid_channel is None:
            raise _Bad(_problem("channel.id", channel, "a Slack channel id"))
        message_ts = _nested(payload, "container", "message_ts")
        if not _fits(message_ts, MESSAGE_TS):
            raise _Bad(_problem("container.message_ts", message_ts, "a message timestamp"))
        action = _first_action(payload)
    except _Bad as bad:
        return Refusal(f"rollbot refused this click: {bad}", user=valid_user, channel=valid_channel)
    body: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": valid_user},
        "channel": {"id": valid_channel},
        "container": {"type": "message", "channel_id": valid_channel, "message_ts": message_ts},
        "actions": [action],
    }
    team = _nested(payload, "team", "id")
    if isinstance(team, str) and len(team) <= MAX_SHORT:
        body["team"] = {"id": team}
    if _fits(payload.get("response_url"), URL):
        body["response_url"] = payload["response_url"]
    trigger = payload.get("trigger_id")
    if isinstance(trigger, str) and 0 < len(trigger) <= MAX_SHORT:  # a modal opens on it (the clear's reason)
        body["trigger_id"] = trigger
    return Checked(body)


def _first_action(payload: dict[str, Any]) -> dict[str, Any]:
    actions = payload.get("actions")
    if not isinstance(actions, list):
        raise _Bad(_problem("actions", actions, "a list of actions"))
    if not actions:
        raise _Bad("`actions` is empty")
    action = actions[0]
    if not isinstance(action, dict):
        raise _Bad(_problem("actions[0]", action, "an action object"))
    checked = {
        "type": "button",
        "action_id": _string(action, "action_id", MAX_ACTION_ID, where="actions[0]."),
        "value": _string(action, "value", MAX_VALUE, where="actions[0]."),
    }
    block_id = action.get("block_id")
    if isinstance(block_id, str) and len(block_id) <= MAX_SHORT:
        checked["block_id"] = block_id
    return checked


def _events_api(text: str) -> Checked | Refusal:
    try:
        body = _json(text, "the JSON body")
    except _Bad as bad:
        return Refusal(f"rollbot refused this request: {bad}")
    if not isinstance(body, dict):
        return Refusal(f"rollbot refused this request: the JSON body is {_json_type(body)}, not an object")
    try:
        kind = _string(body, "type", MAX_SHORT)
        if kind == "url_verification":
            return Checked({"type": kind, "challenge": _string(body, "challenge", MAX_SHORT)})
        event = body.get("event")
        if kind == "event_callback" and isinstance(event, dict) and event.get("type") == "app_home_opened":
            return _home_opened(body, event)
    except _Bad as bad:
        return Refusal(f"rollbot refused this request: {bad}")
    return Checked({"type": kind})


def _home_opened(body: dict[str, Any], event: dict[str, Any]) -> Checked:
    """Someone opened rollbot's App Home: who, and which tab (only `home` is drawn)."""
    user = _matching(event, "user", USER_ID, "a Slack user id")
    checked: dict[str, Any] = {
        "type": "event_callback",
        "event": {"type": "app_home_opened", "user": user, "tab": _bounded(event.get("tab"), "event.tab", MAX_SHORT)},
    }
    for key in ("team_id", "api_app_id", "event_id"):
        if isinstance(body.get(key), str) and 0 < len(body[key]) <= MAX_SHORT:
            checked[key] = body[key]
    return Checked(checked)


def _json(text: str, what: str) -> Any:
    """JSON text read into Python values. Nesting beyond Python's recursion limit (about a
    thousand levels; Slack's payloads have a dozen) is refused like any other defect instead of
    escaping as a `RecursionError`."""
    try:
        return json.loads(text)
    except RecursionError:
        raise _Bad(f"{what} is nested too deeply to be from Slack") from None
    except ValueError as error:
        reason = getattr(error, "msg", None) or "not JSON"
        raise _Bad(f"{what} is not valid JSON ({reason} at character {getattr(error, 'pos', 0)})") from None


def _string(fields: dict[str, Any], key: str, limit: int, where: str = "") -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not value:
        raise _Bad(_problem(where + key, value, "a non-empty string"))
    if len(value) > limit:
        raise _Bad(f"`{where}{key}` is {len(value)} characters long; at most {limit}")
    return value


def _matching(fields: dict[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = fields.get(key)
    if not _fits(value, pattern):
        raise _Bad(_problem(key, value, what))
    return str(value)


def _optional(fields: dict[str, str], keys: tuple[str, ...]) -> dict[str, str]:
    return {key: fields[key] for key in keys if key in fields and 0 < len(fields[key]) <= MAX_SHORT}


def _nested(payload: dict[str, Any], outer: str, inner: str) -> Any:
    container = payload.get(outer)
    return container.get(inner) if isinstance(container, dict) else None


def _fits(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _problem(key: str, value: Any, expected: str) -> str:
    """`user.id` is missing / is a number, not a Slack user id / `xyz` is not a Slack user id."""
    if value is None or value == "":
        return f"`{key}` is missing"
    if not isinstance(value, str):
        return f"`{key}` is {_json_type(value)}, not {expected}"
    if len(value) > MAX_VALUE:
        return f"`{key}` is {len(value)} characters long, not {expected}"
    return f"`{key}` {shown(value)} is not {expected}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else "a string"


def shown(text: str, limit: int = SHOWN) -> str:
    """Text from a request, quoted for a Slack message and a log line: clipped, inert (no
    mentions, links or formatting: Slack asks for &, < and > to be escaped) and on one line
    (a control character is written as its escape, e.g. \\n, so it cannot forge a log line)."""
    clipped = text if len(text) <= limit else text[: limit - 3] + "..."
    visible = "".join(char if char.isprintable() else repr(char)[1:-1] for char in clipped)
    return "`" + visible.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "`"
