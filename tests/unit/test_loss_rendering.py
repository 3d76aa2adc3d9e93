"""Both front ends show the same loss facts: who was affected, what the live brain lost, and the
external effects no rollback undoes (the terminal's plan, Slack's plan and its confirm dialog)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bot.brain.external import ExternalCall, ExternalEffects
from bot.brain.facts import Affected, LossReport, TableLoss
from bot.brain.snapshots import Snapshot
from bot.core.rollbot import Rollbot
from bot.planning.brain_plan import BrainPlan
from bot.planning.plan import Plan, RollbackRequest
from bot.terminal.render import render_plan
from handlers.ids import ActionId
from handlers.plan_blocks import plan_message
from storage import Journal

from .fakes import FakeHealth, World

LOSS = LossReport(
    (
        TableLoss("conversations", 4, "created_at", "t1", "t2"),
        TableLoss("feedback", 4, "created_at", "t1", "t2", lost_columns=("comment dropped (2 row(s) held data)",)),
    ),
    (
        Affected("conversations", "user_id", 3, 4),
        Affected("feedback", "team_id", 0, 0, "the live table feedback has no such column"),
    ),
)
EXTERNAL = ExternalEffects(
    "tool_calls",
    "2026-12-05T10:00:00+00:00",
    1,
    (ExternalCall("send_email", "2026-12-05T10:01:00+00:00", "sent"),),
)


def restoring(plan: Plan, tmp_path: Path) -> Plan:
    snapshot = Snapshot(
        tmp_path / "brain-pre-upgrade.db", datetime(2026, 12, 5, 9, tzinfo=UTC), 1, 4096, None, by_hand=True
    )
    brain = BrainPlan(tmp_path / "brain.sqlite", 2, 1, "label", restore=True, snapshot=snapshot, loss=LOSS)
    return replace(plan, brain=brain, external=EXTERNAL, environment="production")


def test_the_terminal_plan_shows_who_what_was_lost_and_the_external_effects(
    world: World, journal: Journal, tmp_path: Path
) -> None:
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    plan = restoring(rollbot.plan(RollbackRequest("engine", "2.3.1", "U0REQUEST")).plan, tmp_path)
    out = Console(record=True, width=300)
    render_plan(out, plan)
    text = out.export_text()
    assert "    feedback: 4 row(s) added (t1 … t2), column comment dropped (2 row(s) held data)" in text
    assert (
        "  who was affected: conversations.user_id: 3 distinct in 4 row(s); feedback.team_id: not counted "
        "(the live table feedback has no such column)" in text
    )
    assert "External effects not rolled back (partial rollback)\n" in text
    assert "  1 external effect(s) not rolled back (send_email ×1) since 2026-12-05T10:00:00+00:00\n" in text
    assert "  2026-12-05T10:01:00+00:00 send_email (sent)\n" in text


def test_slack_plan_and_confirm_dialog_say_the_same(world: World, journal: Journal, tmp_path: Path) -> None:
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    planned = rollbot.plan(RollbackRequest("engine", "2.3.1", "U0REQUEST"))
    message = plan_message(restoring(planned.plan, tmp_path), planned.run)
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert "who was affected: conversations.user_id: 3 distinct in 4 row(s)" in text
    assert "column comment dropped (2 row(s) held data)" in text
    assert ":warning: *External effects not rolled back:* 1 external effect(s) not rolled back (send_email ×1)" in text
    [actions] = [block for block in message.blocks if block["type"] == "actions"]
    [approve] = [e for e in actions["elements"] if e["action_id"] == ActionId.BRAIN_RESTORE_APPROVE]
    confirm = approve["confirm"]["text"]["text"]
    assert "1 external effect(s) stay done: a partial rollback." in confirm
    assert "affected: conversations.user_id 3" in confirm and "team_id" not in confirm


def test_a_plan_with_its_new_facts_reads_back_from_the_journal(world: World, journal: Journal, tmp_path: Path) -> None:
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    plan = restoring(rollbot.plan(RollbackRequest("engine", "2.3.1", "U0REQUEST")).plan, tmp_path)
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.external == EXTERNAL
    assert again.brain is not None and again.brain.loss == LOSS
