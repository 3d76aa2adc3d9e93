"""Evidence in the thread: the replaced version's logs (their last part) are shared as a file in
the announcement's thread with files v2 (files.getUploadURLExternal, the upload, then
files.completeUploadExternal with the thread's ts), and a failed run's message carries the error
lines of those logs. Through Prism with Slack's spec, which predates files v2: its only
complaint allowed here is that it does not know those two methods."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.ids import ActionId
from storage import RunStatus
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

from .slack_bot import INCIDENT, REQUESTER, Bot, button, slack_bot, spec_complaints, wait


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
    assert fake.calls_to("files.getUploadURLExternal"), "files v2 was used"
    assert spec_complaints(prism, mark) == []


def roll_back(bot: Bot) -> str:
    bot.command("engine 2.3.1 health failing")
    plan = bot.plan_message("2.3.1")
    approve = button(plan, ActionId.APPROVE)
    assert approve is not None
    bot.click(ActionId.APPROVE, approve["value"], plan, REQUESTER)
    run_id = str(approve["value"])
    wait(lambda: bot.journal.run(run_id).status.is_final and bot.journal.run(run_id).status is not RunStatus.RUNNING)
    wait(
        lambda: any(":large_green_circle:" in str(m) or ":red_circle:" in str(m) for m in bot.slack.messages(INCIDENT))
    )
    assert bot.services.outbox.drain(timeout=20)
    return run_id


def test_the_logs_are_shared_in_the_announcements_thread(tmp_path: Path, slack: FakeSlack, web_api: tuple) -> None:
    with slack_bot(tmp_path, slack, web_api[1]) as bot:
        bot.world.docker.logs["c0ffee"] += b"".join(b"2026-11-26T03:06:%02dZ turn ok\n" % n for n in range(60))
        roll_back(bot)
        announcement = slack.messages(INCIDENT)[0]
        assert announcement["text"].startswith(":rotating_light: Rolling back *engine*")
        [shared] = slack.files(INCIDENT)
        assert shared["thread_ts"] == announcement["ts"] and shared["name"] == "engine-2.4.0.log"
        assert shared["title"].startswith("Logs of engine 2.4.0")
        assert b"ERROR 500" in shared["content"] and b"turn ok" in shared["content"]
        [asked] = slack.calls_to("files.getUploadURLExternal")
        assert asked.params["filename"] == "engine-2.4.0.log" and int(asked.params["length"]) == len(shared["content"])
        [completed] = slack.calls_to("files.completeUploadExternal")
        assert completed.params["channel_id"] == INCIDENT and completed.params["thread_ts"] == announcement["ts"]


def test_a_large_log_is_shared_capped_with_its_end(tmp_path: Path, slack: FakeSlack, web_api: tuple) -> None:
    with slack_bot(tmp_path, slack, web_api[1]) as bot:
        bot.world.docker.logs["c0ffee"] = b"".join(b"line %06d of a long log\n" % n for n in range(40_000))
        roll_back(bot)
        [shared] = slack.files(INCIDENT)
        assert len(shared["content"]) <= 256 * 1024 + 200
        assert shared["content"].startswith(b"[rollbot: the first ")
        assert shared["content"].endswith(b"line 039999 of a long log\n")


def test_a_failed_run_shows_the_error_lines_of_the_logs(tmp_path: Path, slack: FakeSlack, web_api: tuple) -> None:
    with slack_bot(tmp_path, slack, web_api[1]) as bot:
        bot.world.compose.failures["up"] = "docker compose up -d engine exited 1: port is already allocated"
        run_id = roll_back(bot)
        assert bot.journal.run(run_id).status is RunStatus.FAILED
        failure = next(m for m in slack.messages(INCIDENT) if ":red_circle:" in str(m))
        text = str(failure["blocks"])
        assert "Error lines in the logs of 2.4.0" in text and "2026-11-26T03:05:00Z ERROR 500" in text
        assert "starting" not in text.split("Error lines")[1], "only the error lines"
