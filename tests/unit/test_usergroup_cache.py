"""Acks never wait on the network: user-group membership comes from a cache read at start and
refreshed in the background. A refresh that fails keeps the last good list and is logged; a
group never read is said to be unknown, never "you are not a requester"."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.directory import SlackDirectory
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

from .slack_bot import GROUPIE, ONCALL_GROUP, STRANGER, slack_bot, spec_complaints, wait


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with FakeSlack(usergroups={ONCALL_GROUP: [GROUPIE]}) as slack, Prism(slack.url) as prism:
        yield slack, prism


@pytest.fixture
def slack(web_api: tuple[FakeSlack, Prism]) -> Iterator[FakeSlack]:
    fake, prism = web_api
    fake.reset()
    fake.usergroups = {ONCALL_GROUP: [GROUPIE]}
    mark = prism.mark()
    yield fake
    assert spec_complaints(prism, mark) == []


def test_the_ack_answers_from_the_cache_while_slack_takes_ten_seconds(
    tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]
) -> None:
    with slack_bot(tmp_path, slack, web_api[1], requesters=(ONCALL_GROUP,)) as bot:
        bot.services.watch_usergroups()  # the cold start: read before serving
        assert len(slack.calls_to("usergroups.users.list")) == 1
        slack.delay("usergroups.users.list", 10)
        answer, seconds = bot.command("engine 2.3.1 health failing", user=GROUPIE)
        assert answer.status == 200 and "Planning the rollback of engine to 2.3.1" in answer.body
        assert len(slack.calls_to("usergroups.users.list")) == 1, "the ack did not ask Slack"
        # A wide bound: the ack does no network call at all; bench/ack_latency.py measures it.
        assert seconds < 1.0, seconds
        refused, _ = bot.command("engine 2.3.1", user=STRANGER)
        assert "you are not one of the requesters of engine" in refused.body
        bot.plan_message()
        slack.delay("usergroups.users.list", 0)


def test_a_failed_refresh_keeps_the_last_good_list_and_is_logged(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture, web_api: tuple[FakeSlack, Prism]
) -> None:
    from slack_sdk import WebClient

    directory = SlackDirectory(WebClient(token="xoxb-test", base_url=web_api[1].url))
    directory.refresh_groups([ONCALL_GROUP, "U0NOTAGROUP"])
    assert directory.members_of(ONCALL_GROUP) == {GROUPIE}
    slack.fail("usergroups.users.list", status=500, times=3)
    with caplog.at_level(logging.WARNING, logger="handlers.directory"):
        directory.refresh_groups([ONCALL_GROUP])
    assert directory.members_of(ONCALL_GROUP) == {GROUPIE}
    assert any("keeping the last list read" in r.getMessage() for r in caplog.records)
    slack.usergroups[ONCALL_GROUP] = [GROUPIE, STRANGER]
    stop = directory.keep_refreshing([ONCALL_GROUP], every=0.1)
    try:
        wait(lambda: STRANGER in directory.members_of(ONCALL_GROUP), what="the new member, seen by the refresher")
    finally:
        stop.set()


def test_a_group_never_read_is_unknown_not_a_refusal(
    tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]
) -> None:
    slack.fail("usergroups.users.list", status=500, times=20)
    with slack_bot(tmp_path, slack, web_api[1], requesters=(ONCALL_GROUP,)) as bot:
        bot.services.watch_usergroups()
        answer, _ = bot.command("engine 2.3.1", user=GROUPIE)
        assert "has not been able to read the members of user group S0ONCALL00" in answer.body
        assert "not one of the requesters" not in answer.body
        assert bot.journal.runs() == [], "nothing was planned"
