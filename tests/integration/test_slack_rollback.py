"""Full rollbacks of the demo Engine driven only by Slack: a command and clicks, signed as Slack
signs them, against the real Docker daemon, with every Web API call checked by Prism."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from handlers.ids import ActionId
from storage import RunStatus
from tests.integration.brains import digests
from tests.integration.demo import BROKEN, HEALTHY, REPOSITORY, deployment, wait_until
from tests.integration.slack_harness import (
    COMMAND_CHANNEL,
    INCIDENT_CHANNEL,
    assert_blocks_valid,
    button,
    serving,
    slack_web_api,
    wait_for,
)
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

REQUESTER, APPROVER = "U0REQUEST1", "U0APPROVER"


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with slack_web_api() as both:
        yield both


def test_image_rollback_by_command_and_click(tmp_path: Path, web_api: tuple[FakeSlack, Prism]) -> None:
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    with deployment(tmp_path, running=BROKEN) as deployed, serving(deployed, slack, prism) as bot:
        acked = bot.command(f"engine {HEALTHY} health failing since upgrade", REQUESTER)
        assert acked.status == 200 and "Planning the rollback" in acked.body

        plan = bot.plan_message(f"{BROKEN}")
        approve = button(plan, ActionId.APPROVE)
        assert approve is not None and button(plan, ActionId.BRAIN_RESTORE_APPROVE) is None
        clicked = bot.click(ActionId.APPROVE, approve["value"], REQUESTER, plan)
        assert clicked.status == 200

        final = wait_for(
            lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "All clear" in str(m)), None),
            120,
            "the all-clear",
        )
        assert f"engine is healthy on {HEALTHY}" in final["text"]

        container = deployed.container().attrs
        assert container["Config"]["Image"] == f"{REPOSITORY}:{HEALTHY}"
        wait_until(lambda: (a := deployed.health()) is not None and a.status_code == 200, 30, what="/health ok")

        announcement, status = slack.messages(INCIDENT_CHANNEL)[:2]
        assert announcement["text"] == (
            f":rotating_light: Rolling back *engine* (demo) from `{BROKEN}` to `{HEALTHY}` due to health failing "
            f"since upgrade — requested by <@{REQUESTER}>, approved by <@{REQUESTER}>"
        )
        replay_status_edits(slack.edit_history(INCIDENT_CHANNEL, status["ts"]))
        replies = [m["text"] for m in slack.thread(INCIDENT_CHANNEL, announcement["ts"])[1:]]
        assert any("captured" in r and "bytes of logs" in r for r in replies)
        assert any("/health ok" in r for r in replies)
        [shared] = slack.files(INCIDENT_CHANNEL)
        assert shared["thread_ts"] == announcement["ts"] and f"engine {BROKEN}: ERROR" in shared["content"].decode()
        [completed] = slack.calls_to("files.completeUploadExternal")
        assert completed.params["thread_ts"] == announcement["ts"]

        linked = wait_for(
            lambda: [m for m in slack.messages(INCIDENT_CHANNEL, replies=True) if "Postmortem" in str(m)],
            30,
            "the postmortem's link",
        )
        assert len(linked) == 1, "linked once: in the all-clear, or in a thread reply when filed later"
        assert f"postmortems/{approve['value']}/postmortem.md" in str(linked[0])

        closed = slack.messages(COMMAND_CHANNEL)[-1]
        assert button(closed, ActionId.APPROVE) is None, "the plan's buttons are gone once decided"
        assert_blocks_valid(slack.messages(COMMAND_CHANNEL) + slack.messages(INCIDENT_CHANNEL, replies=True))
        assert list(prism.violations(since=mark)) == []
        assert "Traceback" not in bot.log()
        assert_metrics_show_the_run(bot, deployed.journal().run(approve["value"]))


def test_incident_channel_by_name_gets_every_message_by_id(tmp_path: Path) -> None:
    """`incident_channel: "#incident"`: looked up with conversations.list (paged), then the
    announcement, the status message's edits and the all-clear all in that channel's id."""
    channels = {
        COMMAND_CHANNEL: "rollbacks",
        INCIDENT_CHANNEL: "incident",
        "C0GENERAL0": "general",
        "G0ONCALL00": "oncall",
    }
    edits = {"incident_channel: C0INCIDENT": 'incident_channel: "#incident"'}
    with (
        FakeSlack(channels=channels, private_channels={"G0ONCALL00"}, list_page_size=2) as slack,
        Prism(slack.url) as prism,
        deployment(tmp_path, running=BROKEN, config_edits=edits) as deployed,
        serving(deployed, slack, prism) as bot,
    ):
        mark = prism.mark()
        bot.command(f"engine {HEALTHY} health failing since upgrade", REQUESTER)
        plan = bot.plan_message(f"{BROKEN}")
        approve = button(plan, ActionId.APPROVE)
        assert approve is not None
        bot.click(ActionId.APPROVE, approve["value"], REQUESTER, plan)
        final = wait_for(
            lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "All clear" in str(m)), None),
            120,
            "the all-clear in the incident channel's id",
        )
        assert f"engine is healthy on {HEALTHY}" in final["text"]

        announcement, status = slack.messages(INCIDENT_CHANNEL)[:2]
        assert announcement["text"].startswith(":rotating_light: Rolling back *engine*")
        replay_status_edits(slack.edit_history(INCIDENT_CHANNEL, status["ts"]))
        assert slack.thread(INCIDENT_CHANNEL, announcement["ts"])[1:], "details went to the announcement's thread"
        assert len(slack.calls_to("conversations.list")) == 2, "resolved once: two pages of two channels"
        updated = {c.params["channel"] for c in slack.calls_to("chat.update")}
        assert updated == {INCIDENT_CHANNEL, COMMAND_CHANNEL}, "edits name ids, never '#incident'"
        assert all(c.status == 200 for c in slack.calls), "no call was refused"
        assert not any("could not be used" in str(m) for m in slack.messages(COMMAND_CHANNEL))
        run = deployed.journal().run(approve["value"])
        assert run.status is RunStatus.SUCCEEDED and run.context["status_message"]["channel"] == INCIDENT_CHANNEL
        assert prism.violations(since=mark) == []
        assert "Traceback" not in bot.log()


def assert_metrics_show_the_run(bot, run) -> None:  # type: ignore[no-untyped-def]
    """`GET /metrics` scraped after the run: its outcome and each step's duration, as Prometheus parses them."""
    scraped = httpx.get(f"http://127.0.0.1:{bot.port}/metrics", timeout=10)
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }
    assert found[("rollbot_runs_total", (("kind", "rollback"), ("status", "succeeded"), ("target", "engine")))] == 1
    for step in run.steps:
        labels = (("status", step.status.value), ("step", step.name), ("target", "engine"))
        assert found[("rollbot_step_duration_seconds_count", labels)] == 1
        assert abs(found[("rollbot_step_duration_seconds_sum", labels)] - step.seconds) < 0.01


def test_brain_rollback_needs_another_approver(tmp_path: Path, web_api: tuple[FakeSlack, Prism]) -> None:
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    with deployment(tmp_path, running=HEALTHY, brain=True) as deployed, serving(deployed, slack, prism) as bot:
        deployed.remember(3)
        assert bot.command("snapshot engine", REQUESTER, response_id="snap").status == 200
        wait_for(lambda: slack.responses("snap"), 60, "the snapshot's answer")
        assert "took a snapshot" in slack.responses("snap")[-1]["text"]
        [snapshot] = deployed.snapshots.glob("*.sqlite")
        deployed.deploy(BROKEN)
        deployed.remember(2)

        bot.command(f"engine {HEALTHY} 2.4.0 cannot read its memory", REQUESTER)
        plan = bot.plan_message("Brain restore")
        approve = button(plan, ActionId.BRAIN_RESTORE_APPROVE)
        assert approve is not None and button(plan, ActionId.APPROVE) is None
        assert "episodes: 2 row(s)" in str(plan["blocks"])

        bot.click(ActionId.BRAIN_RESTORE_APPROVE, approve["value"], REQUESTER, plan)
        refusal = wait_for(lambda: slack.ephemerals(REQUESTER), 30, "the requester's refusal")
        assert "needs an approver other than the requester" in refusal[-1]["text"]
        assert deployed.journal().run(approve["value"]).status is RunStatus.PLANNED

        bot.click(ActionId.BRAIN_RESTORE_APPROVE, approve["value"], APPROVER, plan)
        final = wait_for(
            lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "All clear" in str(m)), None),
            120,
            "the all-clear",
        )
        assert "brain restored from" in final["text"]
        assert digests(deployed.brain) == digests(snapshot)
        run = deployed.journal().run(approve["value"])
        assert run.status is RunStatus.SUCCEEDED and run.approver == APPROVER
        assert_blocks_valid(slack.messages(COMMAND_CHANNEL) + slack.messages(INCIDENT_CHANNEL, replies=True))
        assert prism.violations(since=mark) == []


def replay_status_edits(history: list[dict]) -> None:
    """The status message went through every step in order and ended in the final state."""
    assert len(history) >= 2
    finished_counts = []
    for version in history:
        text = str(version.get("blocks"))
        finished_counts.append(text.count(":white_check_mark:") - (1 if ":white_check_mark: done" in text else 0))
    assert finished_counts == sorted(finished_counts), f"steps went backwards: {finished_counts}"
    last = str(history[-1]["blocks"])
    assert ":white_check_mark: done" in last and ":hourglass" not in last and ":white_circle:" not in last
