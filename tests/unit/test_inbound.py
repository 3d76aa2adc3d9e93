"""Reading what Slack POSTs: checked fields through, anything else refused by name."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from handlers.inbound import Checked, Refusal, read, shown
from tests.slackapi.signing import block_action, slash_command

FORM = "application/x-www-form-urlencoded"
RESPONSE_URL = "http://127.0.0.1:9/response/r1"
TRIGGER_ID = "1700000000000001.1.0123456789abcdef"  # fixed: parameter ids must not differ between test workers


def click(**changes: Any) -> bytes:
    """A real block_actions body (Slack's shape) with fields replaced or removed (None)."""
    payload = json.loads(
        dict(
            _form(
                block_action(
                    "rollback_approve",
                    "20260101-000000-abcdef",
                    "U0ALICE01",
                    "C0PLANS01",
                    "1700000000.000100",
                    RESPONSE_URL,
                    block_id="b1",
                    trigger_id=TRIGGER_ID,
                    action_ts="1700000001.000001",
                )
            )
        )["payload"]
    )
    for path, value in changes.items():
        _set(payload, path.split("__"), value)
    return urlencode({"payload": json.dumps(payload)}).encode()


def _form(body: str) -> list[tuple[str, str]]:
    return parse_qsl(body, keep_blank_values=True)


def _set(tree: Any, path: list[str], value: Any) -> None:
    for key in path[:-1]:
        tree = tree[int(key)] if isinstance(tree, list) else tree[key]
    last = path[-1]
    if isinstance(tree, list):
        tree[int(last)] = value
    elif value is None:
        tree.pop(last, None)
    else:
        tree[last] = value


def command(text: str = "engine 2.3.1", **fields: str | None) -> bytes:
    body = dict(_form(slash_command(text, "U0ALICE01", "C0PLANS01", RESPONSE_URL, trigger_id=TRIGGER_ID)))
    for key, value in fields.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return urlencode(body).encode()


def test_a_slash_command_keeps_only_checked_fields_even_when_its_text_says_payload() -> None:
    read_back = read(command("engine 2.3.1 payload service returns 500"), FORM)
    assert isinstance(read_back, Checked)
    assert read_back.body["text"] == "engine 2.3.1 payload service returns 500"
    assert read_back.body["user_id"] == "U0ALICE01" and read_back.body["channel_id"] == "C0PLANS01"
    assert "token" not in read_back.body, "the deprecated verification token is not passed on"


def test_a_click_keeps_only_checked_fields() -> None:
    read_back = read(click(), FORM)
    assert isinstance(read_back, Checked)
    body = read_back.body
    assert body["actions"][0]["action_id"] == "rollback_approve"
    assert body["actions"][0]["value"] == "20260101-000000-abcdef"
    assert body["container"]["message_ts"] == "1700000000.000100"
    assert "message" not in body
    assert body["trigger_id"] == TRIGGER_ID, "kept: the Clear button opens its form on it"


def test_a_click_without_a_usable_trigger_keeps_none() -> None:
    for trigger in ("", "t" * 300, 12):
        read_back = read(click(trigger_id=trigger), FORM)
        assert isinstance(read_back, Checked) and "trigger_id" not in read_back.body


@pytest.mark.parametrize(
    "body, names",
    [
        (command(user_id=None), "`user_id` is missing"),
        (command(user_id="alice"), "`user_id` `alice` is not a Slack user id"),
        (command(user_id="U" * 5000), "`user_id` is 5000 characters long"),
        (command(channel_id="#general"), "`channel_id` `#general` is not a Slack channel id"),
        (command(response_url="javascript:alert(1)"), "`response_url`"),
        (command(command=""), "`command` is missing"),
        (command(command="/" + "x" * 300), "`command` is 301 characters long"),
    ],
)
def test_a_bad_command_field_is_refused_by_name(body: bytes, names: str) -> None:
    refusal = read(body, FORM)
    assert isinstance(refusal, Refusal) and refusal.slash_command
    assert names in refusal.text


@pytest.mark.parametrize(
    "body, names",
    [
        (click(user=None), "`user.id` is missing"),
        (click(user="U0ALICE01"), "`user.id` is missing"),
        (click(user__id=7), "`user.id` is a number, not a Slack user id"),
        (click(user__id="<!channel>"), "`user.id` `&lt;!channel&gt;` is not a Slack user id"),
        (click(channel=None, container__channel_id=None), "`channel.id` is missing"),
        (click(container__message_ts=["1"]), "`container.message_ts` is a list"),
        (click(actions=None), "`actions` is missing"),
        (click(actions={"action_id": "x"}), "`actions` is an object, not a list"),
        (click(actions=[]), "`actions` is empty"),
        (click(actions__0="rollback_approve"), "`actions[0]` `rollback_approve` is not an action object"),
        (click(actions__0__action_id=None), "`actions[0].action_id` is missing"),
        (click(actions__0__action_id=True), "`actions[0].action_id` is a boolean"),
        (click(actions__0__value=None), "`actions[0].value` is missing"),
        (click(actions__0__value="r" * 2001), "`actions[0].value` is 2001 characters long; at most 2000"),
    ],
)
def test_a_bad_click_field_is_refused_by_name(body: bytes, names: str) -> None:
    refusal = read(body, FORM)
    assert isinstance(refusal, Refusal) and not refusal.slash_command
    assert names in refusal.text


def test_a_click_refusal_knows_whom_to_tell_only_when_user_and_channel_are_valid() -> None:
    with_both = read(click(actions=[]), FORM)
    assert isinstance(with_both, Refusal) and (with_both.user, with_both.channel) == ("U0ALICE01", "C0PLANS01")
    without_user = read(click(user__id="nobody"), FORM)
    assert isinstance(without_user, Refusal) and without_user.user is None


@pytest.mark.parametrize(
    "body, content_type, names",
    [
        (b"payload=%7Bnot-json", FORM, "`payload` is not valid JSON"),
        (b"payload=%5B1%2C2%5D", FORM, "`payload` is a list, not an object"),
        (b"payload=%7B%7D", FORM, "`payload.type` is missing"),
        (b"payload=%7B%22type%22%3A5%7D", FORM, "`payload.type` is a number"),
        (b"text=engine+2.3.1", FORM, "neither `command`"),
        (b"", FORM, "neither `command`"),
        (b"\xff\xfe\x00", FORM, "not UTF-8"),
        (b"{", "application/json", "the JSON body is not valid JSON"),
        (b"[]", "application/json", "the JSON body is a list"),
        (b'{"type": "url_verification"}', "application/json", "`challenge` is missing"),
    ],
)
def test_an_unreadable_body_is_refused_with_why(body: bytes, content_type: str, names: str) -> None:
    refusal = read(body, content_type)
    assert isinstance(refusal, Refusal)
    assert names in refusal.text


@pytest.mark.parametrize("kind", ["view_closed", "shortcut", "message_action", "block_suggestion"])
def test_other_payload_types_keep_only_their_type_for_bolt_to_refuse(kind: str) -> None:
    body = urlencode({"payload": json.dumps({"type": kind, "user": 5, "view": "x", "authorizations": 7})}).encode()
    assert read(body, FORM) == Checked({"type": kind})


def test_shown_clips_and_makes_text_inert() -> None:
    assert shown("<@U0BOSS> & <!here>") == "`&lt;@U0BOSS&gt; &amp; &lt;!here&gt;`"
    assert shown("x" * 100) == "`" + "x" * 37 + "...`"
    assert shown("a\nFORGED LOG LINE\x1b[2J") == "`a\\nFORGED LOG LINE\\x1b[2J`"


def _submission(**view: object) -> bytes:
    payload = {"type": "view_submission", "user": {"id": "U0ALICE01"}, "team": {"id": "T0ROLLBOT"}, "view": view}
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_a_form_submission_keeps_its_callback_metadata_and_values() -> None:
    values = {
        "form_target": {"form_target": {"type": "static_select", "selected_option": {"value": "engine", "text": {}}}},
        "form_reason": {"form_reason": {"type": "plain_text_input", "value": "5xx", "extra": [1]}},
    }
    body = _submission(
        id="V0001",
        callback_id="rollback_form",
        private_metadata='{"channel": "C0PLANS001"}',
        state={"values": values},
        blocks=[{"type": "input"}],
    )
    checked = read(body, FORM)
    assert isinstance(checked, Checked)
    assert checked.body["view"] == {
        "id": "V0001",
        "type": "modal",
        "callback_id": "rollback_form",
        "private_metadata": '{"channel": "C0PLANS001"}',
        "state": {
            "values": {
                "form_target": {"form_target": {"type": "static_select", "selected_option": {"value": "engine"}}},
                "form_reason": {"form_reason": {"type": "plain_text_input", "value": "5xx"}},
            }
        },
    }


@pytest.mark.parametrize(
    "view, names",
    [
        ({"callback_id": "rollback_form", "state": {"values": {}}}, "`view.id` is missing"),
        ({"id": "V1", "callback_id": "rollback_form", "state": {"values": []}}, "view.state.values"),
        (
            {"id": "V1", "callback_id": "rollback_form", "state": {"values": {"b": {"a": {"type": "x", "value": 5}}}}},
            "`view.state.values.b.a.value` is a number",
        ),
        ({"id": "V1", "callback_id": "f", "private_metadata": "x" * 4000, "state": {"values": {}}}, "at most 3000"),
    ],
)
def test_a_malformed_form_submission_is_refused_by_field(view: dict[str, object], names: str) -> None:
    refusal = read(_submission(**view), FORM)
    assert isinstance(refusal, Refusal) and names in refusal.text and refusal.user == "U0ALICE01"
