"""Who a rollback affected and what it cannot undo, on the demo Engine and the real daemon.

The story: 2.3.1 runs and remembers turns of user U0, a snapshot is taken, 2.4.0 goes out
(it migrates the brain to schema 2 and fails /health), then the bad window: turns of other
users, and maybe a destructive tool call. The rollback to 2.3.1 restores the brain.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from handlers.ids import ActionId
from storage import RunStatus
from tests.integration.demo import BROKEN, HEALTHY, Deployment, build_demo_images, deployment
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

DROPS = "2.5.0-drops"  # broken, and its migration (schema 3) drops feedback.comment and older social edges
REQUESTER, APPROVER = "U0REQUEST1", "U0APPROVER"
BAD_WINDOW = [("U1", "C1"), ("U1", "C1"), ("U2", "C2"), ("U3", "C3")]


@pytest.fixture
def before_upgrade(tmp_path: Path) -> Iterator[Deployment]:
    """2.3.1 with two turns of U0 and a snapshot taken: the moment before the upgrade."""
    with deployment(tmp_path, running=HEALTHY, brain=True) as deployed:
        deployed.turn("U0", "C0", "before the upgrade")
        deployed.turn("U0", "C0", "before the upgrade")
        taken = deployed.rollbot("snapshot", "engine")
        assert taken.returncode == 0, taken.stdout + taken.stderr
        yield deployed


def bad_window(deployed: Deployment, version: str = BROKEN, tool: str | None = None) -> None:
    deployed.deploy(version)
    assert deployed.wait_for_answer().status_code == 503
    for user, conversation in BAD_WINDOW:
        deployed.turn(user, conversation, "in the bad window")
    if tool:
        deployed.turn("U2", "C2", "please mail the customer", tool=tool)


def postmortem_folder(deployed: Deployment) -> Path:
    return deployed.folder / "postmortems" / deployed.runs()[0].id


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_the_postmortem_lists_the_three_users_of_the_bad_window(before_upgrade: Deployment) -> None:
    bad_window(before_upgrade)

    done = before_upgrade.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "2.4.0 cannot serve")

    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "who was affected: conversations.user_id: 3 distinct in 4 row(s); conversations.conversation_id: "
        "3 distinct in 4 row(s); feedback.user_id: 3 distinct in 4 row(s)" in done.stdout
    )
    assert "no destructive external calls in tool_calls since" in done.stdout
    assert "partial" not in done.stdout
    folder = postmortem_folder(before_upgrade)
    assert csv_rows(folder / "affected-users.csv") == [
        ["table", "column", "value", "rows"],
        ["conversations", "user_id", "U1", "2"],
        ["conversations", "user_id", "U2", "1"],
        ["conversations", "user_id", "U3", "1"],
        ["conversations", "conversation_id", "C1", "2"],
        ["conversations", "conversation_id", "C2", "1"],
        ["conversations", "conversation_id", "C3", "1"],
        ["feedback", "user_id", "U1", "2"],
        ["feedback", "user_id", "U2", "1"],
        ["feedback", "user_id", "U3", "1"],
    ]
    postmortem = (folder / "postmortem.md").read_text()
    assert "Who was affected (distinct values per identifying column): conversations.user_id: 3 distinct" in postmortem
    assert "Attached: affected-users.csv" in postmortem
    assert "[succeeded]" in postmortem


def test_a_destructive_call_in_the_bad_window_makes_a_partial_rollback(before_upgrade: Deployment) -> None:
    bad_window(before_upgrade, tool="send_email")

    done = before_upgrade.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "2.4.0 mails customers")

    assert done.returncode == 0, done.stdout + done.stderr  # done: what stays undone is outside
    assert "External effects not rolled back (partial rollback)" in done.stdout
    assert "1 external effect(s) not rolled back (send_email ×1) since" in done.stdout
    [outcome] = [line for line in done.stdout.splitlines() if line.startswith("partial rollback: ")]
    assert outcome.startswith("partial rollback: 1 external effect(s) not rolled back (send_email ×1 since ")
    assert f"engine is healthy on {HEALTHY}" in outcome
    run = before_upgrade.journal().run(before_upgrade.runs()[0].id)
    assert run.status is RunStatus.SUCCEEDED and run.summary["external_effects"] == 1
    history = before_upgrade.rollbot("history")
    assert "partial (1 external effect(s) not rolled back)" in history.stdout
    [listed] = before_upgrade.history_json()
    assert (listed["status"], listed["outcome"]) == ("succeeded", "partial (1 external effect(s) not rolled back)")
    postmortem = (postmortem_folder(before_upgrade) / "postmortem.md").read_text()
    assert "[partial]" in postmortem
    assert "External effects not rolled back: 1 destructive call(s) in tool_calls (send_email ×1 since" in postmortem
    assert "partial rollback: healthy, 1 external effect(s) not rolled back" in postmortem  # the timeline's end
    assert "External effect not rolled back: " in postmortem and "send_email (sent)" in postmortem


@pytest.fixture(scope="module")
def drops_image() -> None:
    build_demo_images({DROPS: (True, 3)})


@pytest.mark.usefixtures("drops_image")
def test_a_migration_that_drops_a_column_shows_in_the_loss_report(before_upgrade: Deployment) -> None:
    with closing(sqlite3.connect(before_upgrade.brain)) as brain:
        held = brain.execute("SELECT count(*) FROM feedback WHERE comment IS NOT NULL").fetchone()[0]
    assert held == 2
    bad_window(before_upgrade, version=DROPS)

    done = before_upgrade.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "2.5.0 lost the comments")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "feedback: 4 row(s) added" in done.stdout and "column comment dropped (2 row(s) held data)" in done.stdout
    assert "social_graph: 4 row(s) added" in done.stdout and ", 1 deleted" in done.stdout
    postmortem = (postmortem_folder(before_upgrade) / "postmortem.md").read_text()
    assert (
        "Data the live brain had lost since the snapshot (a migration dropped it; the restore brings it back): "
        "feedback: 4 row(s) added" in postmortem
    )
    assert "column comment dropped (2 row(s) held data)" in postmortem
    with closing(sqlite3.connect(before_upgrade.brain)) as brain:
        assert brain.execute("SELECT count(*) FROM feedback WHERE comment IS NOT NULL").fetchone()[0] == 2


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with slack_web_api() as both:
        yield both


def test_slack_tells_the_channel_it_was_a_partial_rollback(
    before_upgrade: Deployment, web_api: tuple[FakeSlack, Prism]
) -> None:
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    bad_window(before_upgrade, tool="delete_resource")
    with serving(before_upgrade, slack, prism) as bot:
        bot.command(f"engine {HEALTHY} 2.4.0 deletes customer resources", REQUESTER)
        plan = bot.plan_message(BROKEN)
        shown = str(plan["blocks"])
        assert "External effects not rolled back:* 1 external effect(s) not rolled back (delete_resource ×1)" in shown
        assert "delete_resource (deleted)" in shown
        assert "who was affected: conversations.user_id: 3 distinct in 5 row(s)" in shown  # U2's mail is a turn too
        approve = button(plan, ActionId.BRAIN_RESTORE_APPROVE)
        assert approve is not None
        assert "1 external effect(s) stay done: a partial rollback." in approve["confirm"]["text"]["text"]
        bot.click(ActionId.BRAIN_RESTORE_APPROVE, approve["value"], APPROVER, plan)

        final = wait_for(
            lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "Partial rollback" in str(m)), None),
            120,
            "the partial rollback's last message",
        )
        assert final["text"].startswith(
            "partial rollback: 1 external effect(s) not rolled back (delete_resource ×1 since "
        )
        assert f"engine is healthy on {HEALTHY}" in final["text"]
        assert not any("All clear" in str(m) for m in slack.messages(INCIDENT_CHANNEL))
        status = slack.messages(INCIDENT_CHANNEL)[1]
        assert "done, partial rollback (external effects not rolled back)" in status["text"]
        bot.command("history", REQUESTER)
        listed = wait_for(lambda: next((m for m in slack.responses() if "History" in str(m)), None), 30, "the history")
        assert "partial (1 external effect(s) not rolled back)" in str(listed)
        assert_blocks_valid(slack.messages(COMMAND_CHANNEL) + slack.messages(INCIDENT_CHANNEL, replies=True))
        assert list(prism.violations(since=mark)) == []
        assert "Traceback" not in bot.log()
