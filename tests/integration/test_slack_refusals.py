"""What Slack must refuse or survive: forged and stale requests, bad input, the wrong people,
expired plans, and a Web API that answers 429 and 5xx in the middle of a rollback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.ids import ActionId
from storage import RunStatus
from tests.integration.demo import BROKEN, HEALTHY, REPOSITORY, Deployment, deployment
from tests.integration.slack_harness import (
    COMMAND_CHANNEL,
    INCIDENT_CHANNEL,
    SIGNING_SECRET,
    Bot,
    button,
    serving,
    slack_web_api,
    wait_for,
)
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism
from tests.slackapi.signing import post, signed_headers, slash_command

ONCALL, STRANGER, GROUPIE = "U0ONCALL01", "U0STRANGER", "U0GROUPIE1"


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with slack_web_api() as both:
        yield both


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, web_api: tuple[FakeSlack, Prism]) -> Iterator[Bot]:
    """Requesters are one user and one usergroup; plans expire after 3 seconds."""
    slack, prism = web_api
    edits = {
        "    requesters: []             # empty: anyone may ask": f"    requesters: [{ONCALL}, S0ONCALL00]",
        "    keep_images: 5": "    keep_images: 5\nplan_ttl_minutes: 0.05",
    }
    with (
        deployment(tmp_path_factory.mktemp("slack"), running=BROKEN, config_edits=edits) as deployed,
        serving(deployed, slack, prism) as bot,
    ):
        yield bot


def untouched(deployed: Deployment, before: str) -> None:
    assert deployed.container().id == before
    assert f"{REPOSITORY}:{BROKEN}" in deployed.compose_file.read_text()


def test_a_forged_signature_is_refused_with_401(bot: Bot) -> None:
    body = slash_command(f"engine {HEALTHY}", ONCALL, "C0PLANS000", bot.slack.response_url())
    headers = signed_headers(body, "not-the-secret")
    assert post(bot.events_url, body, headers).status == 401


def test_a_request_six_minutes_old_is_refused_with_401(bot: Bot) -> None:
    body = slash_command(f"engine {HEALTHY}", ONCALL, "C0PLANS000", bot.slack.response_url())
    headers = signed_headers(body, SIGNING_SECRET, timestamp=int(time.time()) - 6 * 60)
    assert post(bot.events_url, body, headers).status == 401


@pytest.mark.parametrize(
    "text, user, says",
    [
        (f"payments {HEALTHY}", ONCALL, "Unknown target `payments`; configured targets: engine"),
        ("engine 2.3.1;rm", ONCALL, "is not a Docker tag"),
        ("frobnicate the engine", ONCALL, "Unknown target `frobnicate`"),
        ("frobnicate", ONCALL, "Unknown target `frobnicate`"),
        (f"engine {HEALTHY}", STRANGER, "you are not one of the requesters of engine"),
    ],
)
def test_bad_commands_get_a_clear_ephemeral_reply_and_nothing_changes(
    bot: Bot, text: str, user: str, says: str
) -> None:
    before = bot.deployed.container().id
    runs_before = len(bot.deployed.runs()) if bot.deployed.database.exists() else 0
    reply = bot.command(text, user)
    assert reply.status == 200
    answer = reply.json()
    assert answer["response_type"] == "ephemeral" and says in answer["text"], answer
    if user == ONCALL:
        assert "/rollback status" in answer["text"], "what was not understood comes with the help text"
    assert "Traceback" not in reply.body
    assert (len(bot.deployed.runs()) if bot.deployed.database.exists() else 0) == runs_before
    untouched(bot.deployed, before)


def test_a_member_of_a_requester_group_may_ask(bot: Bot) -> None:
    reply = bot.command(f"engine {HEALTHY} checking groups", GROUPIE)
    assert "Planning the rollback" in reply.json()["text"]
    plan = bot.plan_message("checking groups")
    assert button(plan, ActionId.APPROVE) is not None
    cancel = button(plan, ActionId.CANCEL)
    bot.click(ActionId.CANCEL, cancel["value"], GROUPIE, plan)
    wait_for(lambda: bot.deployed.journal().run(cancel["value"]).status is RunStatus.CANCELLED, 30, "the cancel")


def test_an_expired_plan_is_refused_at_the_click(bot: Bot) -> None:
    before = bot.deployed.container().id
    bot.command(f"engine {HEALTHY} about to expire", ONCALL)
    plan = bot.plan_message("about to expire")
    approve = button(plan, ActionId.APPROVE)
    time.sleep(3.5)
    bot.click(ActionId.APPROVE, approve["value"], ONCALL, plan)
    refusal = wait_for(lambda: [e for e in bot.slack.ephemerals(ONCALL) if "expired" in e["text"]], 30, "the refusal")
    # The plan was closed when its time was up (and edited to "expired — plan again"); a click
    # racing that close is refused as expired either way.
    assert any(
        said in refusal[-1]["text"]
        for said in (
            "this plan expired after 0.05 minutes",
            "this plan was cancelled (expired before it was confirmed)",
        )
    )
    assert bot.deployed.journal().run(approve["value"]).status is RunStatus.CANCELLED
    edited = wait_for(
        lambda: [v for v in bot.slack.edit_history(COMMAND_CHANNEL, plan["ts"]) if "Expired — plan again" in str(v)],
        30,
        "the plan edited in place to expired",
    )
    assert button(edited[-1], ActionId.APPROVE) is None and button(edited[-1], "rollback_plan_again") is not None
    untouched(bot.deployed, before)


def test_slack_answering_429_and_503_never_fails_or_loses_progress(
    tmp_path: Path, web_api: tuple[FakeSlack, Prism]
) -> None:
    slack, prism = web_api
    slack.reset()
    with deployment(tmp_path, running=BROKEN) as deployed, serving(deployed, slack, prism) as bot:
        bot.command(f"engine {HEALTHY} flaky slack", "U0REQUEST1")
        plan = bot.plan_message("flaky slack")
        slack.fail("chat.update", status=429, retry_after=1, times=4)
        slack.fail("chat.postMessage", status=503, times=2)
        bot.click(ActionId.APPROVE, button(plan, ActionId.APPROVE)["value"], "U0REQUEST1", plan)
        final = wait_for(
            lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "All clear" in str(m)), None),
            180,
            "the all-clear despite 429s and 503s",
        )
        assert f"healthy on {HEALTHY}" in final["text"]
        announcement, status = slack.messages(INCIDENT_CHANNEL)[:2]
        assert "Rolling back" in announcement["text"]
        last = str(slack.edit_history(INCIDENT_CHANNEL, status["ts"])[-1]["blocks"])
        assert ":white_check_mark: done" in last, "the final state was delivered after the 429s"
        throttled = [c for c in slack.calls_to("chat.update") if c.status == 429]
        assert len(throttled) == 4
        run = deployed.journal().runs()[0]
        assert run.status is RunStatus.SUCCEEDED


def test_status_and_history_answer_the_person_who_asked(bot: Bot) -> None:
    bot.command("status", ONCALL, response_id="status")
    [status] = wait_for(lambda: bot.slack.responses("status"), 60, "the status answer")
    text = str(status["blocks"])
    assert status["response_type"] == "ephemeral"
    assert f"*engine* (demo): `{BROKEN}` (running)" in text and "brain index missing" in text
    bot.command("history engine", ONCALL, response_id="history")
    [history] = wait_for(lambda: bot.slack.responses("history"), 60, "the history answer")
    assert "*History*" in str(history["blocks"]) and "cancelled" in str(history["blocks"])
