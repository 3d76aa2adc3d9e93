"""Delivery lanes: messages are ordered per target and per channel, each lane on its own thread,
so one message stuck on 429s delays only its own lane, and a message Slack refuses for good is
reported: to the person (the command's response_url), in the log with the run id, at /metrics.
Through Prism with Slack's spec."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from handlers.ids import ActionId
from handlers.outbox import Outbox
from handlers.poster import SlackPoster
from storage import RunStatus
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

from .slack_bot import INCIDENT, PLANS, REQUESTER, button, slack_bot, spec_complaints, wait

STUCK = "C0STUCK001"


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with FakeSlack() as slack, Prism(slack.url) as prism:
        yield slack, prism


@pytest.fixture
def slack(web_api: tuple[FakeSlack, Prism]) -> Iterator[FakeSlack]:
    fake, prism = web_api
    fake.reset()
    mark = prism.mark()
    yield fake
    assert spec_complaints(prism, mark) == []
    fake.channels = None


def test_a_lane_stuck_on_429s_does_not_hold_up_another(slack: FakeSlack, web_api: tuple[FakeSlack, Prism]) -> None:
    slack.fail("chat.postMessage", status=429, retry_after=1, times=8, channel=STUCK)
    outbox = Outbox()
    poster = SlackPoster(WebClient(token="xoxb-test", base_url=web_api[1].url))
    # another target's run whose incident channel Slack keeps answering 429
    stuck = outbox.send(lambda: poster.post(STUCK, "stuck"), lane="target:payments")
    for number in range(10):
        outbox.send(lambda n=number: poster.post(INCIDENT, f"message {n}"), lane="target:engine")
    delivered = wait(lambda: len(slack.messages(INCIDENT)) == 10 and slack.messages(INCIDENT), what="ten messages")
    assert [m["text"] for m in delivered] == [f"message {n}" for n in range(10)], "in order within the lane"
    assert not stuck.done.is_set() and slack.messages(STUCK) == [], "the other lane still waits out its 429s"
    assert stuck.done.wait(20) and [m["text"] for m in slack.messages(STUCK)] == ["stuck"], "and lands after"
    outbox.stop()


def test_another_channels_stuck_plan_does_not_delay_a_rollback(
    tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]
) -> None:
    with slack_bot(tmp_path, slack, web_api[1]) as bot:
        slack.fail("chat.postMessage", status=429, retry_after=1, times=30, channel=STUCK)
        bot.command("engine 2.2.0 checking", channel=STUCK)
        bot.command("engine 2.3.1 health failing")
        plan = bot.plan_message("2.3.1")
        approve = button(plan, ActionId.APPROVE)
        assert approve is not None
        bot.click(ActionId.APPROVE, approve["value"], plan, REQUESTER)
        wait(lambda: bot.journal.run(approve["value"]).status is RunStatus.SUCCEEDED, what="the rollback")
        final = wait(
            lambda: next((m for m in slack.messages(INCIDENT) if "All clear" in str(m)), None), what="the all-clear"
        )
        announcement, status = slack.messages(INCIDENT)[:2]
        assert "Rolling back *engine*" in announcement["text"]
        assert ":white_check_mark: done" in str(slack.edit_history(INCIDENT, status["ts"])[-1]["blocks"])
        replies = [m["text"] for m in slack.thread(INCIDENT, announcement["ts"])[1:]]
        assert any("/health ok" in r for r in replies) and any("captured" in r for r in replies)
        wait(lambda: slack.files(INCIDENT), what="the logs in the thread")
        assert "engine is healthy on 2.3.1" in final["text"]
        assert slack.messages(STUCK) == [], "the stuck channel's plan is still retrying"
        slack.reset()  # Slack recovers: the stuck plan lands, and nothing is left retrying
        assert bot.services.outbox.drain(timeout=30)
        assert len(slack.messages(STUCK)) == 1


def test_a_plan_slack_refuses_for_good_is_reported(
    tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism], caplog: pytest.LogCaptureFixture
) -> None:
    slack.channels = {PLANS: "rollbacks", INCIDENT: "incident"}
    with caplog.at_level(logging.ERROR, logger="handlers.outbox"), slack_bot(tmp_path, slack, web_api[1]) as bot:
        bot.command("engine 2.3.1 health failing", channel="C0NOTMINE1")
        told = wait(lambda: slack.responses(), what="the requester told through the response_url")
        assert "could not post the plan" in told[0]["text"] and "`channel_not_found`" in told[0]["text"]
        assert told[0]["response_type"] == "ephemeral"
        [run] = bot.journal.runs()
        assert run.id in told[0]["text"]
        [record] = [r for r in caplog.records if getattr(r, "run_id", None) == run.id]
        assert "failed for good" in record.getMessage() and "channel:C0NOTMINE1" in record.getMessage()
        metrics = bot.services.outbox.metrics().decode()
        assert 'rollbot_slack_undelivered_total{error="channel_not_found",lane="channel"} 1.0' in metrics
