"""Upgrades on the owners' Engine (tests/integration/outside.py: no rollbot label on its images, the
port and brain volume in the override, COMPOSE_PROJECT_NAME in .env, an old snapshot taken by hand),
from both front ends. The upgrade to 2.4.0 snapshots the brain just before its stop, fails /health,
and the rollback back to 2.3.1 is offered at once; it restores the upgrade's own snapshot, not the
older hand-made one, and then 2.4.0 is known-bad until someone clears it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.ids import ActionId, ClearFormBlock, KnownBadActionId
from storage import RunKind, RunStatus
from tests.integration.brains import digests
from tests.integration.demo import wait_until
from tests.integration.outside import BROKEN, HEALTHY, Outside, outside_deployment
from tests.integration.slack_harness import (
    COMMAND_CHANNEL,
    assert_blocks_valid,
    button,
    serving,
    slack_web_api,
    wait_for,
)

REQUESTER, APPROVER = "U0REQUEST1", "U0APPROVER"


@pytest.fixture
def owners(tmp_path: Path) -> Iterator[Outside]:
    """2.3.1 live with 3 turns, and a snapshot the owners took by hand a while ago (2 turns back)."""
    with outside_deployment(tmp_path, HEALTHY, brain=True, oneoff=False, health_timeout=6) as deployed:
        deployed.remember(1)
        deployed.take_hand_snapshot()
        deployed.remember(2)
        yield deployed


def upgrade_snapshot(deployed: Outside) -> Path:
    [taken] = deployed.snapshots.glob("*.sqlite")
    sidecar = json.loads(taken.with_suffix(".sqlite.json").read_text())
    assert (sidecar["image_tag"], sidecar["upgrade_to"], sidecar["schema_version"]) == (HEALTHY, BROKEN, 1)
    return taken


def test_terminal_upgrade_on_the_owners_engine(owners: Outside) -> None:
    done = owners.rollbot("upgrade", "engine", BROKEN, "--yes", "--reason", "release")
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert f"Upgrade plan engine (staging): {HEALTHY} → {BROKEN}" in said
    assert f"to roll back: rollbot rollback engine {HEALTHY} --brain restore" in said
    taken = upgrade_snapshot(owners)
    assert digests(taken) != digests(owners.hand_snapshot), "the upgrade's snapshot holds the turns since the hand one"

    owners.remember(2)
    back = owners.rollbot("rollback", "engine", "--yes", "--reason", "2.4.0 fails /health")
    assert back.returncode == 0, back.stdout + back.stderr
    assert digests(owners.brain) == digests(taken), "restored from the upgrade's snapshot, not the older hand-made one"
    wait_until(lambda: (a := owners.health()) is not None and a.status_code == 200, 30, what="/health ok")
    assert owners.health().json()["version"] == HEALTHY
    refused = owners.rollbot("upgrade", "engine", BROKEN, "--yes")
    assert refused.returncode == 2 and "root cause first" in refused.stdout + refused.stderr


def test_slack_upgrade_on_the_owners_engine_offers_the_rollback_and_known_bad_waits_for_a_clear(
    owners: Outside,
) -> None:
    with slack_web_api() as (slack, prism), serving(owners, slack, prism) as bot:
        mark = prism.mark()
        acked = bot.command(f"upgrade engine {BROKEN} release 2.4.0", REQUESTER)
        assert acked.status == 200 and f"Planning the upgrade of engine to {BROKEN}" in acked.body
        plan = bot.plan_message(f"Upgrade plan: engine → {BROKEN}")
        approve = button(plan, ActionId.APPROVE)
        assert approve is not None and approve["text"]["text"] == "Upgrade"
        bot.click(ActionId.APPROVE, approve["value"], REQUESTER, plan)

        offered = bot.plan_message(f"Rollback plan: engine → {HEALTHY}", timeout=180)
        restore = button(offered, ActionId.BRAIN_RESTORE_APPROVE)
        assert restore is not None, "the rollback is pre-planned with the brain restore"
        upgrade = owners.journal().run(approve["value"])
        assert upgrade.kind == RunKind.UPGRADE and upgrade.status is RunStatus.FAILED
        assert f"the upgrade to {BROKEN} (run {upgrade.id})" in str(offered["blocks"])
        taken = upgrade_snapshot(owners)
        assert taken.name in str(offered["blocks"])
        announced = [m["text"] for m in slack.messages(COMMAND_CHANNEL)]
        assert any(t.startswith(f":arrow_up: Upgrading *engine* (staging) `{HEALTHY}` → `{BROKEN}`") for t in announced)
        assert not any("Rolling back" in t for t in announced)

        bot.click(ActionId.BRAIN_RESTORE_APPROVE, restore["value"], APPROVER, offered)
        all_clear = wait_for(
            lambda: next((m for m in slack.messages(COMMAND_CHANNEL) if "All clear" in str(m)), None), 180, "all clear"
        )
        assert digests(owners.brain) == digests(taken)
        clear_button = button(all_clear, KnownBadActionId.CLEAR)
        assert clear_button is not None and clear_button["text"]["text"] == f"Clear {BROKEN} for deployment…"

        bot.command(f"upgrade engine {BROKEN}", REQUESTER)
        refused = wait_for(
            lambda: [m for m in slack.messages(COMMAND_CHANNEL) if "root cause first" in str(m.get("blocks"))],
            60,
            "the known-bad refusal",
        )[-1]
        assert button(refused, ActionId.APPROVE) is None and restore["value"] in str(refused["blocks"])

        opened = len(slack.views())
        assert bot.click(KnownBadActionId.CLEAR, clear_button["value"], APPROVER, all_clear).status == 200
        form = wait_for(lambda: slack.views()[opened:], 60, "the clear's form")[-1]
        reason = {ClearFormBlock.REASON: {ClearFormBlock.REASON: {"type": "plain_text_input", "value": "  "}}}
        empty = bot.submit_form(APPROVER, form, reason)
        assert empty.status == 200 and "say why it may run again" in empty.body
        reason[ClearFormBlock.REASON][ClearFormBlock.REASON]["value"] = "index migration fixed"
        assert bot.submit_form(APPROVER, form, reason).status == 200
        cleared = wait_for(
            lambda: [m for m in slack.messages(COMMAND_CHANNEL) if f"cleared {BROKEN} of engine" in m["text"]],
            60,
            "the clear's message",
        )[-1]["text"]
        assert f"<@{APPROVER}> cleared {BROKEN} of engine for deployment: index migration fixed" in cleared
        bot.command(f"clear engine {BROKEN} once more", APPROVER)
        nothing = wait_for(lambda: slack.ephemerals(APPROVER), 60, "the second clear's refusal")[-1]["text"]
        assert f"{BROKEN} of engine is not known-bad; nothing to clear" in nothing
        bot.command("history engine", APPROVER, response_id="history")
        history = wait_for(lambda: slack.responses("history"), 60, "history")[-1]
        assert "cleared by U0APPROVER" in str(history["blocks"])

        planned_again = len(slack.messages(COMMAND_CHANNEL))
        bot.command(f"upgrade engine {BROKEN}", REQUESTER)
        again = wait_for(lambda: slack.messages(COMMAND_CHANNEL)[planned_again:], 60, "a fresh upgrade plan")[-1]
        assert button(again, ActionId.APPROVE) is not None, "after the clear the upgrade may go ahead"
        assert_blocks_valid(slack.messages(COMMAND_CHANNEL, replies=True))
        assert prism.violations(since=mark) == []
        assert "Traceback" not in bot.log()
