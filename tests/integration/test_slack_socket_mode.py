"""`rollbot serve` in Socket Mode: with SLACK_APP_TOKEN set it dials the websocket Slack hands
out, acks each envelope with its envelope_id (and the command's reply as the ack's payload), and
does the work after the ack through the Web API, the same as in HTTP mode.

The target is not deployed, so preflight only asks the real daemon and registry about images
(a warning for the missing container, no refusal) and the test takes seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.ids import ActionId
from storage import RunStatus
from tests.integration.demo import BROKEN, HEALTHY, Deployment, deployment
from tests.integration.slack_harness import APP_TOKEN, BOT_TOKEN, COMMAND_CHANNEL, button, serving_socket_mode, wait_for
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.signing import block_action_payload, slash_command_fields
from tests.slackapi.socket_mode import FakeSocketMode

REQUESTER = "U0REQUEST1"
ACK_WAIT = 10  # seconds: generous on a loaded machine; Slack's own limit is a bench matter


@pytest.fixture()
def undeployed(tmp_path: Path) -> Iterator[Deployment]:
    with deployment(tmp_path, running=BROKEN, up=False) as deployed:
        yield deployed


def test_envelopes_are_acked_then_the_plan_is_posted_and_cancelled(undeployed: Deployment) -> None:
    with (
        FakeSocketMode() as socket_mode,
        FakeSlack(socket_mode_url=socket_mode.url) as slack,
        serving_socket_mode(undeployed, slack, socket_mode),
    ):
        command = slash_command_fields(
            f"engine {HEALTHY} socket mode check", REQUESTER, COMMAND_CHANNEL, slack.response_url("command")
        )
        command_id = socket_mode.send("slash_commands", command, accepts_response_payload=True)
        assert socket_mode.ack(command_id, ACK_WAIT) == {
            "envelope_id": command_id,
            "payload": {"text": f"Planning the rollback of engine to {HEALTHY}…", "response_type": "ephemeral"},
        }

        plan = wait_for(lambda: next(iter(slack.messages(COMMAND_CHANNEL)), None), 60, "the plan message")
        assert f"`{BROKEN}` → `{HEALTHY}`" in str(plan["blocks"]) and "socket mode check" in str(plan["blocks"])
        run_id = button(plan, ActionId.APPROVE)["value"]
        assert button(plan, ActionId.CANCEL)["value"] == run_id
        assert undeployed.journal().run(run_id).status is RunStatus.PLANNED

        click = block_action_payload(
            ActionId.CANCEL, run_id, REQUESTER, COMMAND_CHANNEL, plan["ts"], slack.response_url("click"), message=plan
        )
        click_id = socket_mode.send("interactive", click)
        assert socket_mode.ack(click_id, ACK_WAIT) == {"envelope_id": click_id}

        closed = wait_for(
            lambda: (h := slack.edit_history(COMMAND_CHANNEL, plan["ts"]))[1:] and h[-1], 30, "the plan message closed"
        )
        assert f"Cancelled by <@{REQUESTER}>" in str(closed)
        assert button(closed, ActionId.APPROVE) is None
        assert undeployed.journal().run(run_id).status is RunStatus.CANCELLED

    opened = slack.calls_to("apps.connections.open")
    assert [call.token for call in opened] == [APP_TOKEN]
    assert {call.token for call in slack.calls if call.method.startswith("chat.")} == {BOT_TOKEN}
    assert socket_mode.connections == 1
