"""Slack-side pure pieces: command parsing, Block Kit rendering, the retrying outbox."""

from __future__ import annotations

import threading
import time

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.core.rollbot import Rollbot
from bot.planning.brain_plan import BrainChoice
from bot.planning.plan import RollbackRequest
from handlers.blocks import esc, history_message, status_message
from handlers.ids import ActionId
from handlers.outbox import Outbox
from handlers.parsing import CommandKind, ParseError, parse
from handlers.plan_blocks import plan_message
from storage import Journal

from .fakes import FakeHealth, World


@pytest.mark.parametrize(
    "text, kind, target, version, reason, brain",
    [
        (
            "engine 2.3.1 health failing since upgrade",
            CommandKind.ROLLBACK,
            "engine",
            "2.3.1",
            "health failing since upgrade",
            BrainChoice.AUTO,
        ),
        (
            "engine 2.3.1 --brain restore bad migration",
            CommandKind.ROLLBACK,
            "engine",
            "2.3.1",
            "bad migration",
            BrainChoice.RESTORE,
        ),
        ("engine 2.3.1 --brain=keep", CommandKind.ROLLBACK, "engine", "2.3.1", "", BrainChoice.KEEP),
        (
            "engine 2.3.1 --brainstorm went badly",
            CommandKind.ROLLBACK,
            "engine",
            "2.3.1",
            "--brainstorm went badly",
            BrainChoice.AUTO,
        ),
        ("status", CommandKind.STATUS, None, None, "", BrainChoice.AUTO),
        ("history engine", CommandKind.HISTORY, "engine", None, "", BrainChoice.AUTO),
        ("snapshot engine", CommandKind.SNAPSHOT, "engine", None, "", BrainChoice.AUTO),
        ("", CommandKind.FORM, None, None, "", BrainChoice.AUTO),
        ("engine", CommandKind.ROLLBACK, "engine", None, "", BrainChoice.AUTO),
        ("  help ", CommandKind.HELP, None, None, "", BrainChoice.AUTO),
    ],
)
def test_commands_parse(
    text: str, kind: CommandKind, target: str | None, version: str | None, reason: str, brain: BrainChoice
) -> None:
    command = parse(text)
    assert (command.kind, command.target, command.version, command.reason, command.brain) == (
        kind,
        target,
        version,
        reason,
        brain,
    )


@pytest.mark.parametrize(
    "text, says",
    [
        ("engine 2.3.1;rm -rf /", "is not a Docker tag"),
        ("engine ../x", "is not a Docker tag"),
        ("engine " + "a" * 200, "is 200 characters"),
        ("engine 2.3.1 --brain maybe", "--brain takes restore or keep, not `maybe`"),
        ("engine 2.3.1 --brain", "--brain takes restore or keep"),
        ("status now", "status takes no arguments"),
        ("snapshot", "snapshot needs exactly one target"),
        ("x" * 3000, "at most 2000"),
        (None, "missing"),
    ],
)
def test_what_is_not_a_command_is_refused_with_why(text: object, says: str) -> None:
    with pytest.raises(ParseError, match=says.replace("(", r"\(")) as refused:
        parse(text)
    assert "\n" not in str(refused.value)


def test_mrkdwn_escaping_keeps_people_text_inert() -> None:
    assert esc("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


def test_plan_messages_validate_and_carry_the_right_button(world: World, journal: Journal) -> None:
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    good = rollbot.plan(RollbackRequest("engine", "2.3.1", "U0REQUEST", "<!channel> 5xx " + "x" * 4000))
    message = plan_message(good.plan, good.run)
    actions = [b for b in message.blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [ActionId.APPROVE, ActionId.CANCEL]
    assert all(e["value"] == good.run.id for e in actions[0]["elements"])
    assert "<!channel>" not in str(message.blocks) and len(message.blocks) <= 50

    refused = rollbot.plan(RollbackRequest("engine", "2.4.0", "U0REQUEST"))
    refused_message = plan_message(refused.plan, refused.run)
    assert not [b for b in refused_message.blocks if b["type"] == "actions"]
    assert "Refused" in str(refused_message.blocks) and "already runs 2.4.0" in str(refused_message.blocks)


def test_status_and_history_messages_render_from_the_journal(world: World, journal: Journal) -> None:
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    planned = rollbot.plan(RollbackRequest("engine", "2.3.1", "U0REQUEST"))
    run = rollbot.execute(planned, "tester")
    text = str(status_message(run).blocks)
    assert text.count(":white_check_mark:") == 1 + 6, "the heading and each of the six steps"
    assert "done" in text
    assert run.id in str(history_message([run]).blocks)


def _slack_error(status: int, error: str, retry_after: str | None = None) -> SlackApiError:
    headers = {"Retry-After": retry_after} if retry_after else {}
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="x",
        req_args={},
        data={"ok": False, "error": error},
        headers=headers,
        status_code=status,
    )
    return SlackApiError(error, response)


def test_outbox_retries_429_honouring_retry_after_and_keeps_order() -> None:
    outbox = Outbox(min_interval=0)
    delivered: list[str] = []
    attempts = {"first": 0}
    began = time.monotonic()

    def first() -> None:
        attempts["first"] += 1
        if attempts["first"] < 3:
            raise _slack_error(429, "ratelimited", retry_after="0.2")
        delivered.append("first")

    outbox.send(first)
    outbox.send(lambda: delivered.append("second"))
    assert outbox.drain(timeout=10)
    assert delivered == ["first", "second"] and attempts["first"] == 3
    assert time.monotonic() - began >= 0.4, "Retry-After was honoured twice"


def test_outbox_coalesces_edits_of_one_message_and_delivers_the_last() -> None:
    outbox = Outbox(min_interval=0.3)
    seen: list[int] = []
    gate = threading.Event()
    outbox.send(lambda: gate.wait(5))
    for version in range(10):
        outbox.send(lambda version=version: seen.append(version), key="status")
    gate.set()
    assert outbox.drain(timeout=10)
    assert seen == [9], "nine stale edits were replaced by the newest"


def test_outbox_drops_a_call_that_can_never_succeed_and_goes_on() -> None:
    outbox = Outbox(min_interval=0)
    delivered: list[str] = []

    def invalid() -> None:
        raise _slack_error(200, "invalid_blocks")

    outbox.send(invalid)
    outbox.send(lambda: delivered.append("next"))
    assert outbox.drain(timeout=5) and delivered == ["next"]
