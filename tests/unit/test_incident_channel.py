"""`incident_channel` given by id, `#name`, `name` or a pasted `<#C…|name>`: resolved once with
conversations.list against the project's fake Slack Web API, every update made by id, and a name
that does not resolve moves progress to the command's channel, saying so there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient

from bot.config import Settings
from bot.core.rollbot import Rollbot
from handlers.app import build_app
from handlers.directory import SlackDirectory, channel_id_in
from handlers.ids import ActionId
from handlers.server import Door
from storage import Journal, RunStatus
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.signing import block_action, signed_headers, slash_command

from .fakes import FakeHealth, make_world

SECRET = "channel-test-signing-secret-40b7e2c1"
USER, PLANS, INCIDENT, PRIVATE = "U0ALICE01", "C0PLANS001", "C0INCIDENT", "G0ONCALL01"
CHANNELS = {
    PLANS: "rollbacks",
    INCIDENT: "incident",
    PRIVATE: "oncall-private",
    "C0ARCHIVED": "old-incident",
    "C0GENERAL1": "general",
}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(
        channels=dict(CHANNELS), private_channels={PRIVATE}, archived_channels={"C0ARCHIVED"}, list_page_size=2
    ) as fake:
        yield fake


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("C0INCIDENT", "C0INCIDENT"),
        ("G0ONCALL01", "G0ONCALL01"),
        ("<#C0INCIDENT|incident>", "C0INCIDENT"),
        ("<#C0INCIDENT>", "C0INCIDENT"),
        ("#incident", None),
        ("incident", None),
        ("Cats", None),
    ],
)
def test_ids_are_read_from_the_entry_without_asking_slack(entry: str, expected: str | None) -> None:
    assert channel_id_in(entry) == expected


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("#incident", INCIDENT),
        ("incident", INCIDENT),
        (" #Incident ", INCIDENT),
        ("#oncall-private", PRIVATE),
        ("C0INCIDENT", INCIDENT),
        ("<#C0INCIDENT|incident>", INCIDENT),
    ],
)
def test_a_channel_resolves_by_name_or_id(slack: FakeSlack, entry: str, expected: str) -> None:
    found = SlackDirectory(WebClient(token="xoxb-test", base_url=slack.url)).channel(entry)
    assert (found.id, found.problem) == (expected, None)


def test_names_are_listed_once_across_pages_and_cached(slack: FakeSlack) -> None:
    directory = SlackDirectory(WebClient(token="xoxb-test", base_url=slack.url))
    assert directory.channel("#incident").id == INCIDENT
    assert directory.channel("#general").id == "C0GENERAL1"
    calls = slack.calls_to("conversations.list")
    assert len(calls) == 2, "four visible channels, two a page: one listing of two pages, then the cache"
    assert calls[0].params["types"] == "public_channel,private_channel" and calls[1].params["cursor"]
    assert directory.channel("C0PLANS001").id == PLANS and len(slack.calls_to("conversations.list")) == 2


def test_an_unknown_or_archived_name_says_why_and_is_asked_again_later(slack: FakeSlack) -> None:
    directory = SlackDirectory(WebClient(token="xoxb-test", base_url=slack.url), ttl=0.2)
    missing = directory.channel("#incidnet")
    assert missing.id is None and "no channel #incidnet is visible to rollbot" in (missing.problem or "")
    assert directory.channel("#old-incident").id is None, "an archived channel takes no messages"
    listings = len(slack.calls_to("conversations.list"))
    slack.channels["C0INCIDNET"] = "incidnet"  # created during the incident
    assert directory.channel("#incidnet").id is None, "within the minute: the cached listing"
    time.sleep(0.25)
    assert directory.channel("#incidnet").id == "C0INCIDNET"
    assert len(slack.calls_to("conversations.list")) > listings


def test_a_slack_error_is_a_problem_never_an_exception(slack: FakeSlack) -> None:
    slack.fail("conversations.list", status=500, times=10)
    client = WebClient(token="xoxb-test", base_url=slack.url)
    found = SlackDirectory(client).channel("#incident")
    assert found.id is None and "conversations.list" in (found.problem or "")
    assert "xoxb" not in (found.problem or "")


class Bot:
    """The real Bolt app and door over a core with fake Docker, talking to the fake Slack."""

    def __init__(self, slack: FakeSlack, rollbot: Rollbot) -> None:
        settings = Settings(
            slack_bot_token=SecretStr("xoxb-channel-test"),
            slack_signing_secret=SecretStr(SECRET),
            slack_api_url=slack.url,
        )
        self.app, self.services = build_app(settings, rollbot)
        self.door, self.slack, self.rollbot = Door(self.app, SECRET, self.services.tell), slack, rollbot

    def send(self, body: str) -> None:
        headers = signed_headers(body.encode(), SECRET)
        answer = self.door.answer(
            body.encode(),
            "application/x-www-form-urlencoded",
            headers["X-Slack-Request-Timestamp"],
            headers["X-Slack-Signature"],
        )
        assert answer.status == 200

    def roll_back(self, journal: Journal) -> str:
        """`/rollback engine 2.3.1` in the plans channel and Approve on the plan; the run's id."""
        self.send(slash_command("engine 2.3.1 health failing", USER, PLANS, self.slack.response_url()))
        run = _wait(lambda: next((r for r in journal.runs() if r.context.get("plan_message")), None))
        self.send(
            block_action(
                ActionId.APPROVE, run.id, USER, PLANS, run.context["plan_message"]["ts"], self.slack.response_url()
            )
        )
        _wait(lambda: journal.run(run.id).status is RunStatus.SUCCEEDED)
        # The all-clear is queued just after the run is journaled as finished: wait for it, then for the rest.
        _wait(lambda: any("All clear" in str(m) for channel in (INCIDENT, PLANS) for m in self.slack.messages(channel)))
        assert self.services.outbox.drain(timeout=20)
        return run.id


@pytest.fixture
def bot_for(tmp_path: Any, journal: Journal, slack: FakeSlack) -> Iterator[Any]:
    made: list[Bot] = []

    def make(incident_channel: str) -> Bot:
        world = make_world(tmp_path, incident_channel=incident_channel)
        rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
        made.append(Bot(slack, rollbot))
        return made[-1]

    yield make
    for bot in made:
        bot.services.outbox.stop()
        bot.rollbot.shutdown()


def test_progress_by_name_lands_in_the_channel_and_is_edited_by_id(
    bot_for: Any, journal: Journal, slack: FakeSlack
) -> None:
    bot = bot_for("#incident")
    run_id = bot.roll_back(journal)
    announcement, status, final = slack.messages(INCIDENT)
    assert "Rolling back *engine*" in announcement["text"] and "All clear" in str(final)
    assert len(slack.edit_history(INCIDENT, status["ts"])) >= 2, (
        "the status message was edited in place (edits coalesce under load)"
    )
    assert {c.params["channel"] for c in slack.calls_to("chat.update")} <= {INCIDENT, PLANS}
    assert all(c.status == 200 for c in slack.calls) and not slack.ephemerals()
    assert journal.run(run_id).context["announcement"]["channel"] == INCIDENT
    assert f"progress in <#{INCIDENT}>" in str(slack.edit_history(PLANS, slack.messages(PLANS)[0]["ts"]))


def test_a_name_that_does_not_resolve_keeps_progress_in_the_command_channel(
    bot_for: Any, journal: Journal, slack: FakeSlack
) -> None:
    bot = bot_for("#incidnet")
    run_id = bot.roll_back(journal)
    assert slack.messages(INCIDENT) == []
    texts = [m["text"] for m in slack.messages(PLANS)]
    notice = next(t for t in texts if "could not be used" in t)
    assert "`incident_channel: #incidnet`" in notice and "no channel #incidnet" in notice
    assert "Progress is posted here instead" in notice and f"<@{USER}>" in notice
    assert any("Rolling back *engine*" in t for t in texts) and any(
        "All clear" in str(m) for m in slack.messages(PLANS)
    )
    assert journal.run(run_id).context["status_message"]["channel"] == PLANS


def test_an_id_rollbot_cannot_post_in_falls_back_with_slacks_reason(
    bot_for: Any, journal: Journal, slack: FakeSlack
) -> None:
    bot = bot_for("C0GONEGONE")  # an id: no lookup, and Slack answers channel_not_found
    bot.roll_back(journal)
    assert slack.calls_to("conversations.list") == []
    texts = [m["text"] for m in slack.messages(PLANS)]
    assert any("Slack answered `channel_not_found`" in t for t in texts)
    assert any("All clear" in str(m) for m in slack.messages(PLANS))


def _wait(probe: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("not reached in time")
