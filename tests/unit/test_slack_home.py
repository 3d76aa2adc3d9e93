"""rollbot's App Home: opening the tab draws each target's running version, health, newest
snapshot and its age, a run in progress, and the last runs (views.publish, through Prism with
Slack's spec). The event is read like every request: only a checked `app_home_opened` gets in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.brain.snapshots import take_snapshot
from handlers.inbound import Checked, read
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism
from tests.slackapi.signing import signed_headers

from .fakes import brain_config, make_brain
from .slack_bot import APPROVER, SECRET, Bot, slack_bot, spec_complaints, wait


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with FakeSlack() as slack, Prism(slack.url) as prism:
        yield slack, prism


def opened(user: str) -> bytes:
    """The Events API body Slack POSTs when `user` opens the app's Home tab."""
    return json.dumps(
        {
            "token": "verification-token-unused",
            "team_id": "T0ROLLBOT",
            "api_app_id": "A0ROLLBOT",
            "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME0001", "tab": "home"},
            "type": "event_callback",
            "event_id": "Ev0HOME0001",
            "event_time": 1700000000,
        }
    ).encode()


def send_event(bot: Bot, body: bytes) -> int:
    headers = signed_headers(body, SECRET)
    answer = bot.door.answer(
        body, "application/json", headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    return answer.status


def test_opening_the_home_tab_draws_targets_snapshots_and_last_runs(
    tmp_path: Path, web_api: tuple[FakeSlack, Prism]
) -> None:
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    with slack_bot(tmp_path, slack, prism, brain=brain) as bot:
        taken = take_snapshot(brain, "2.4.0")
        bot.command("engine 2.3.1 health failing")
        bot.plan_message("2.3.1")
        assert send_event(bot, opened(APPROVER)) == 200
        home = wait(lambda: [v for v in slack.views() if v["method"] == "views.publish"], what="the home tab")[-1]
        assert home["user_id"] == APPROVER and home["type"] == "home"
        text = str(home["blocks"])
        assert "*engine* (test): `2.4.0`" in text and "degraded" in text
        assert f"newest snapshot `{taken.path.name}`, 0 min old" in text
        assert "2.4.0 → 2.3.1" in text and "planned" in text, "the last runs"
    assert spec_complaints(prism, mark) == []


def test_only_a_checked_home_event_gets_in() -> None:
    checked = read(opened("U0BOB0001"), "application/json")
    assert isinstance(checked, Checked) and checked.body["event"] == {
        "type": "app_home_opened",
        "user": "U0BOB0001",
        "tab": "home",
    }
    refused = read(opened("not-a-user"), "application/json")
    assert not isinstance(refused, Checked) and "`user`" in refused.text
    other = read(b'{"type":"event_callback","event":{"type":"message","user":"U0BOB0001"}}', "application/json")
    assert other == Checked({"type": "event_callback"})
