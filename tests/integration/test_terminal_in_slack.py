"""A rollback started at the terminal is visible in the incident channel like one started in
Slack: announced (naming the person at the terminal), followed in the status message and the
thread (with the logs), and closed with the all-clear. `rollbot rollback engine` with no version
goes to the previous good version. The real Docker daemon, the demo Engine, and Slack's Web API
as the project's fake behind Prism with Slack's spec."""

from __future__ import annotations

import getpass
from pathlib import Path

from storage import RunStatus
from tests.integration.demo import BROKEN, HEALTHY, deployment
from tests.integration.slack_harness import BOT_TOKEN, INCIDENT_CHANNEL, assert_blocks_valid, slack_web_api


def test_a_terminal_rollback_is_announced_followed_and_closed_in_the_incident_channel(tmp_path: Path) -> None:
    """The runbook's way: a snapshot while 2.3.1 runs healthy (rollbot records that it saw it so),
    the upgrade to 2.4.0, then `rollbot rollback engine` naming no version."""
    with slack_web_api() as (slack, prism), deployment(tmp_path, running=HEALTHY, brain=True) as deployed:
        taken = deployed.rollbot("snapshot", "engine")
        assert taken.returncode == 0, taken.stdout + taken.stderr
        deployed.deploy(BROKEN)
        mark = prism.mark()
        done = deployed.rollbot(
            "rollback",
            "engine",
            "--yes",
            "--reason",
            "5xx since the upgrade",
            env={"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": prism.url},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "version chosen by rollbot" in done.stdout
        assert f"{HEALTHY} is the previous good version: the last version rollbot saw healthy" in done.stdout
        assert f"engine is healthy on {HEALTHY}" in done.stdout

        announcement, status, final = slack.messages(INCIDENT_CHANNEL)
        person = getpass.getuser()
        assert announcement["text"] == (
            f":rotating_light: Rolling back *engine* (demo) from `{BROKEN}` to `{HEALTHY}` due to 5xx since the "
            f"upgrade — requested by *{person}* (at the terminal), approved by *{person}* (at the terminal)"
        )
        edits = slack.edit_history(INCIDENT_CHANNEL, status["ts"])
        assert len(edits) >= 2 and ":white_check_mark: done" in str(edits[-1]["blocks"])
        assert "All clear" in str(final) and f"engine is healthy on {HEALTHY}" in final["text"]
        replies = [m["text"] for m in slack.thread(INCIDENT_CHANNEL, announcement["ts"])[1:]]
        assert any("bytes of logs" in r for r in replies) and any("/health ok" in r for r in replies)
        assert any("brain restored" in r for r in replies)
        [shared] = slack.files(INCIDENT_CHANNEL)
        assert shared["thread_ts"] == announcement["ts"] and b"ERROR" in shared["content"]
        assert_blocks_valid(slack.messages(INCIDENT_CHANNEL, replies=True))

        assert slack.calls_to("files.completeUploadExternal")
        assert prism.violations(since=mark) == []
        assert "Traceback" not in done.stderr


def test_without_slack_configured_a_terminal_run_posts_nothing(tmp_path: Path) -> None:
    with slack_web_api() as (slack, _prism), deployment(tmp_path, running=BROKEN) as deployed:
        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", env={"SLACK_API_URL": slack.url})
        assert done.returncode == 0, done.stdout + done.stderr
        assert slack.calls == []


def test_yes_never_takes_a_version_rollbot_never_saw_healthy(tmp_path: Path) -> None:
    """Nothing tells rollbot which earlier version ran well (no sighting, no successful run): the
    newest kept image is only a guess, so --yes refuses it and touches nothing."""
    with deployment(tmp_path, running=BROKEN) as deployed:
        before, container = deployed.compose_file.read_bytes(), deployed.container().id
        done = deployed.rollbot("rollback", "engine", "--yes")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "rollbot has not seen it healthy itself" in done.stderr and "with --yes name the version" in done.stderr
        assert deployed.compose_file.read_bytes() == before and deployed.container().id == container
        assert deployed.runs()[0].status is RunStatus.CANCELLED
