"""The brain question on a real deployment: what rollbot records of each version's brain, how a
plan that must ask is answered in place, and that every front end renders every state there is."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from bot.brain.snapshots import take_snapshot
from bot.core.outcomes import ServiceState
from bot.core.rollbot import Rollbot
from bot.planning.approvals import Decision
from bot.planning.brain_plan import BrainChoice
from bot.planning.plan import Plan, PlannedStep, RollbackRequest, StepKind
from bot.planning.preflight import Check, CheckResult
from bot.reporting.postmortem import build, to_markdown
from bot.terminal.render import StepProgress, history_table, render_plan
from bot.text import summary_line
from handlers.blocks import final_message, history_message, interruption_message, status_message
from handlers.ids import ActionId, AnswerActionId
from handlers.plan_blocks import plan_message
from storage import EventView, Journal, RunStatus, RunView, StepStatus, StepView

from .fakes import REPO, FakeHealth, World, brain_config, make_brain, make_world, upgrade_brain

REQUESTER, APPROVER, STRANGER = "U0REQUEST", "U0APPROVE", "U0STRANGE"


def no_groups(entry: str) -> set[str]:
    return set()


@pytest.fixture
def world(tmp_path: Path) -> World:
    """2.4.0 runs on a brain it migrated to schema 2; a snapshot at schema 1 with no sidecar facts
    of 2.3.1; no label anywhere: nothing tells which schema 2.3.1 reads."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    world = make_world(tmp_path, brain=brain, approvers=(APPROVER,))
    take_snapshot(brain, None, now=datetime.now(UTC) - timedelta(hours=1))
    upgrade_brain(brain.path, schema=2, new_rows=2)
    return world


def rollbot_for(world: World, journal: Journal, healthy: set[str] = frozenset({"2.3.1"})) -> Rollbot:  # type: ignore[assignment]
    return Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, set(healthy)))


def question(rollbot: Rollbot) -> RunView:
    planned = rollbot.plan(RollbackRequest("engine", "2.3.1", REQUESTER, "5xx"))
    assert planned.plan.question is not None
    return planned.run


# --- asking and answering ---------------------------------------------------------------------------------


def test_a_question_is_journaled_as_a_plan_waiting_for_its_answer(world: World, journal: Journal) -> None:
    run = question(rollbot_for(world, journal))
    assert run.status is RunStatus.PLANNED and run.steps == ()
    message = plan_message(rollbot_for(world, journal).plan(RollbackRequest("engine", "2.3.1", REQUESTER)).plan, run)
    [actions] = [b for b in message.blocks if b["type"] == "actions"]
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids == [AnswerActionId.RESTORE, AnswerActionId.KEEP, ActionId.CANCEL]
    assert "11 row(s) leave the live brain" in actions["elements"][0]["text"]["text"]
    assert "Ask again" not in str(message.blocks)


def test_answering_keep_makes_an_image_only_plan_the_requester_confirms(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    asked = question(rollbot)
    outcome = rollbot.answer(asked.id, REQUESTER, BrainChoice.KEEP, no_groups)
    assert outcome.refusal is None and outcome.replanned is not None
    fresh = outcome.replanned
    assert fresh.plan.approvable and not fresh.plan.restores_brain
    assert journal.run(asked.id).status is RunStatus.CANCELLED
    assert "answered by U0REQUEST: keep the brain" in (journal.run(asked.id).error or "")
    done = rollbot.decide(fresh.run.id, REQUESTER, Decision.CONFIRM, no_groups, confirms_brain_restore=False)
    assert done.run is not None and done.run.status is RunStatus.SUCCEEDED
    assert world.compose.running_image() == f"{REPO}:2.3.1"


def test_answering_restore_still_needs_a_second_person(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    outcome = rollbot.answer(question(rollbot).id, REQUESTER, BrainChoice.RESTORE, no_groups)
    assert outcome.replanned is not None and outcome.replanned.plan.restores_brain
    run_id = outcome.replanned.run.id
    refused = rollbot.decide(run_id, REQUESTER, Decision.CONFIRM, no_groups, confirms_brain_restore=True)
    assert refused.refusal and "approver other than the requester" in refused.refusal
    done = rollbot.decide(run_id, APPROVER, Decision.CONFIRM, no_groups, confirms_brain_restore=True)
    assert done.run is not None and done.run.status is RunStatus.SUCCEEDED
    assert done.run.summary["brain"].startswith("restored from")


def test_a_question_cannot_be_confirmed_answered_twice_or_by_a_stranger(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    asked = question(rollbot)
    confirm = rollbot.decide(asked.id, REQUESTER, Decision.CONFIRM, no_groups, confirms_brain_restore=False)
    assert confirm.refusal and "answer it with its buttons" in confirm.refusal
    stranger = rollbot.answer(asked.id, STRANGER, BrainChoice.KEEP, no_groups)
    assert stranger.refusal and "requester or an approver" in stranger.refusal
    assert rollbot.answer(asked.id, APPROVER, BrainChoice.KEEP, no_groups).replanned is not None
    again = rollbot.answer(asked.id, REQUESTER, BrainChoice.RESTORE, no_groups)
    assert again.refusal and again.replanned is None
    assert world.compose.running_image() == f"{REPO}:2.4.0", "nothing ran"


def test_an_answer_to_a_plan_that_asks_nothing_is_refused(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    keep = rollbot.plan(RollbackRequest("engine", "2.3.1", REQUESTER, brain=BrainChoice.KEEP)).run
    outcome = rollbot.answer(keep.id, REQUESTER, BrainChoice.RESTORE, no_groups)
    assert outcome.refusal and "asks no question" in outcome.refusal
    assert journal.run(keep.id).status is RunStatus.PLANNED


# --- what rollbot records, and how the next plan uses it ------------------------------------------------------


def test_a_successful_run_records_the_schema_its_version_is_healthy_on(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    outcome = rollbot.answer(question(rollbot).id, REQUESTER, BrainChoice.RESTORE, no_groups)
    assert outcome.replanned is not None
    rollbot.decide(outcome.replanned.run.id, APPROVER, Decision.CONFIRM, no_groups, confirms_brain_restore=True)
    seen = journal.schema_seen("engine", "2.3.1")
    assert seen is not None and (seen.schema, seen.source) == (1, "run")


def test_status_records_a_healthy_version_and_the_next_plan_decides_from_it(world: World, journal: Journal) -> None:
    """2.4.0 was seen healthy on schema 2 by `status`; that says nothing about 2.3.1, so it still asks.
    Once 2.3.1 was seen healthy on schema 1, a plan to it restores without asking."""
    rollbot = rollbot_for(world, journal, healthy={"2.3.1", "2.4.0"})
    rollbot.status()
    assert journal.schema_seen("engine", "2.4.0") is not None
    assert rollbot.plan(RollbackRequest("engine", "2.3.1", REQUESTER)).plan.question is not None
    journal.saw_schema("engine", "2.3.1", 1, "status")
    plan = rollbot.plan(RollbackRequest("engine", "2.3.1", REQUESTER)).plan
    assert plan.question is None and plan.restores_brain
    assert "rollbot saw 2.3.1 healthy on schema 1" in next(c.detail for c in plan.checks if c.name == "brain schema")


def test_an_unhealthy_version_is_never_recorded(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal, healthy=set())
    rollbot.status()
    rollbot.take_snapshot("engine", REQUESTER)
    assert journal.schema_seen("engine", "2.4.0") is None


def test_a_snapshot_of_a_healthy_version_records_its_schema(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal, healthy={"2.4.0"})
    rollbot.take_snapshot("engine", REQUESTER)
    seen = journal.schema_seen("engine", "2.4.0")
    assert seen is not None and (seen.schema, seen.source) == (2, "snapshot")


# --- every renderer handles every state ---------------------------------------------------------------------


def every_check_plan(world: World, journal: Journal) -> tuple[Plan, RunView]:
    planned = rollbot_for(world, journal).plan(RollbackRequest("engine", "2.3.1", REQUESTER, "5xx"))
    checks = tuple(Check(f"check {result.value}", result, f"detail of {result.value}") for result in CheckResult)
    steps = tuple(PlannedStep(kind, f"step {kind.value}") for kind in StepKind)
    return replace(planned.plan, checks=checks, steps=steps), planned.run


def every_step_run(run: RunView, status: RunStatus) -> RunView:
    now = datetime.now(UTC)
    steps = tuple(
        StepView(
            position,
            StepKind.CAPTURE_LOGS.value,
            f"step in state {state.value}",
            state,
            now if state is not StepStatus.PENDING else None,
            now if state in (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED) else None,
            {"error": "boom"} if state is StepStatus.FAILED else {},
            "boom" if state is StepStatus.FAILED else None,
        )
        for position, state in enumerate(StepStatus)
    )
    return replace(
        run,
        status=status,
        steps=steps,
        started_at=now,
        finished_at=now,
        current_step="capture_logs",
        error="boom" if status is not RunStatus.SUCCEEDED else None,
    )


@pytest.mark.parametrize("result", list(CheckResult))
def test_every_check_result_renders_in_the_terminal_and_in_slack(
    world: World, journal: Journal, result: CheckResult
) -> None:
    plan, run = every_check_plan(world, journal)
    plan = replace(plan, checks=tuple(c for c in plan.checks if c.result is result))
    out = io.StringIO()
    render_plan(Console(file=out, width=200), plan)
    assert f"check {result.value}: detail of {result.value}" in out.getvalue()
    assert f"detail of {result.value}" in str(plan_message(plan, run).blocks)


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_run_and_step_state_renders_everywhere(world: World, journal: Journal, status: RunStatus) -> None:
    _, planned = every_check_plan(world, journal)
    run = every_step_run(planned, status)
    out = io.StringIO()
    console = Console(file=out, width=200)
    console.print(history_table([run]))
    with StepProgress(console, run) as progress:
        for step in run.steps:
            progress(EventView(1, run.id, datetime.now(UTC), "t", "step.started", None, {"position": step.position}))
            progress(
                EventView(
                    2,
                    run.id,
                    datetime.now(UTC),
                    "t",
                    "step.finished",
                    step.status.value,
                    {"position": step.position, **step.detail},
                )
            )
    rendered = [
        out.getvalue(),
        summary_line(run),
        str(status_message(run).blocks),
        str(final_message(run).blocks),
        str(history_message([run]).blocks),
        str(interruption_message(run, ServiceState("img", "running", False, "503")).blocks),
        to_markdown(build(run, [])),
    ]
    assert all(run.id in text or run.target in text for text in rendered)
    for state in StepStatus:
        assert f"step in state {state.value}" in str(status_message(run).blocks)


def test_healthy_but_errors_persist_is_not_an_all_clear_anywhere(world: World, journal: Journal) -> None:
    _, planned = every_check_plan(world, journal)
    persisting = "no clean window in 30s: error rate 40.0% above the tolerance 1.0%"
    run = replace(
        every_step_run(planned, RunStatus.SUCCEEDED),
        summary={"healthy": True, "seconds": 40.0, "errors_persist": persisting},
    )
    final = final_message(run)
    assert "All clear" not in final.text + str(final.blocks)
    assert "*Healthy but errors persist:*" in str(final.blocks)
    assert f"but errors persist ({persisting}) — not an all-clear" in summary_line(run)
    recovered = replace(run, summary={"healthy": True, "seconds": 40.0, "recovery": "errors recovered: …"})
    assert "All clear" in str(final_message(recovered).blocks)
    assert summary_line(recovered).endswith(f"; errors recovered: … (run {run.id})")
