"""`/rollback check` in Slack, signed as Slack signs it, every Web API call checked by Prism:
the verdict with its evidence in the channel, and its button planning the rollback it recommends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.ids import ActionId, CheckActionId
from tests.integration.demo import BROKEN, HEALTHY, deployment
from tests.integration.slack_harness import (
    COMMAND_CHANNEL,
    assert_blocks_valid,
    button,
    serving,
    slack_web_api,
    wait_for,
)
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

REQUESTER = "U0REQUEST1"


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with slack_web_api() as both:
        yield both


def test_check_posts_the_verdict_and_its_button_plans_the_rollback(
    tmp_path: Path, web_api: tuple[FakeSlack, Prism]
) -> None:
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    with deployment(tmp_path, running=BROKEN) as deployed, serving(deployed, slack, prism) as bot:
        acked = bot.command("check engine", REQUESTER)
        assert acked.status == 200 and "Checking engine against the runbook's criteria" in acked.body

        verdict = wait_for(
            lambda: next(
                (m for m in slack.messages(COMMAND_CHANNEL) if "Should engine be rolled back" in str(m)), None
            ),
            60,
            "the check's verdict",
        )
        text = str(verdict["blocks"])
        assert "/health is not ok" in text and f"running: {BROKEN}, up since" in text
        assert "not measured: error rate and p95 latency (no metrics.prometheus_url)" in text
        plan_button = button(verdict, CheckActionId.PLAN)
        assert plan_button is not None
        target, version = plan_button["value"].split(" ")
        assert target == "engine" and version in verdict["text"]

        clicked = bot.click(CheckActionId.PLAN, plan_button["value"], REQUESTER, verdict)
        assert clicked.status == 200
        plan = bot.plan_message(f"{BROKEN} → {version}")
        assert button(plan, ActionId.APPROVE) is not None
        assert "/health is not ok" in str(plan["blocks"]), "the plan shows the same evidence"

        assert_blocks_valid(slack.messages(COMMAND_CHANNEL))
        assert list(prism.violations(since=mark)) == []


def test_check_of_an_unknown_target_is_refused_in_the_ack(tmp_path: Path, web_api: tuple[FakeSlack, Prism]) -> None:
    slack, prism = web_api
    slack.reset()
    with deployment(tmp_path, running=HEALTHY) as deployed, serving(deployed, slack, prism) as bot:
        acked = bot.command("check nowhere", REQUESTER)
        assert acked.status == 200 and "Unknown target `nowhere`; configured targets: engine." in acked.body
        healthy = bot.command("check engine", REQUESTER)
        assert healthy.status == 200
        verdict = wait_for(
            lambda: next(
                (m for m in slack.messages(COMMAND_CHANNEL) if "Should engine be rolled back" in str(m)), None
            ),
            60,
            "the check's verdict",
        )
        assert "Don't roll back: /health is ok (judged on health alone)" in verdict["text"]
        assert button(verdict, CheckActionId.PLAN) is None
