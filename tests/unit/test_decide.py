"""Clicks on a plan, decided by the core: who, when, whether the facts still hold, at most once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.rollbot import Rollbot
from bot.planning.approvals import Decision
from bot.planning.plan import RollbackRequest
from storage import Journal, RunStatus

from .fakes import REPO, FakeHealth, World, make_world

REQUESTER, APPROVER, STRANGER = "U0REQUEST", "U0APPROVE", "U0STRANGE"
GROUP = "S0ONCALL"


def no_groups(entry: str) -> set[str]:
    return set()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, approvers=(APPROVER, GROUP))


def rollbot_for(world: World, journal: Journal) -> Rollbot:
    return Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))


def planned(rollbot: Rollbot, requester: str = REQUESTER) -> str:
    run = rollbot.plan(RollbackRequest("engine", "2.3.1", requester, "5xx")).run
    assert run.status is RunStatus.PLANNED
    return run.id


def test_the_requester_confirms_an_image_rollback_and_it_runs(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    outcome = rollbot.decide(planned(rollbot), REQUESTER, Decision.CONFIRM, no_groups, confirms_brain_restore=False)
    assert outcome.refusal is None and outcome.run is not None
    assert outcome.run.status is RunStatus.SUCCEEDED
    assert outcome.run.approver == REQUESTER
    assert world.compose.running_image() == f"{REPO}:2.3.1"


def test_a_stranger_cannot_confirm_and_nothing_changes(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    run_id = planned(rollbot)
    outcome = rollbot.decide(run_id, STRANGER, Decision.CONFIRM, no_groups)
    assert outcome.refusal and "requester or an approver" in outcome.refusal
    assert journal.run(run_id).status is RunStatus.PLANNED
    assert world.compose.running_image() == f"{REPO}:2.4.0"


def test_a_member_of_an_approver_group_may_confirm(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    outcome = rollbot.decide(
        planned(rollbot), STRANGER, Decision.CONFIRM, lambda g: {STRANGER} if g == GROUP else set()
    )
    assert outcome.run is not None and outcome.run.status is RunStatus.SUCCEEDED


def test_the_wrong_button_for_the_plan_is_refused(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    run_id = planned(rollbot)
    outcome = rollbot.decide(run_id, APPROVER, Decision.CONFIRM, no_groups, confirms_brain_restore=True)
    assert outcome.refusal and "does not restore the brain" in outcome.refusal
    assert journal.run(run_id).status is RunStatus.PLANNED


def test_an_expired_plan_is_refused_and_closed(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    old = Journal(journal._sessions.kw["bind"], clock=lambda: datetime.now(UTC) - timedelta(minutes=16))  # type: ignore[attr-defined]
    run_id = (
        Rollbot(world.config, old, world.systems(), FakeHealth(world.compose, set()))
        .plan(RollbackRequest("engine", "2.3.1", REQUESTER))
        .run.id
    )
    outcome = rollbot.decide(run_id, REQUESTER, Decision.CONFIRM, no_groups)
    assert outcome.refusal and "expired after 15 minutes" in outcome.refusal
    assert journal.run(run_id).status is RunStatus.CANCELLED
    assert world.compose.running_image() == f"{REPO}:2.4.0"


def test_changed_facts_refuse_the_click_and_make_a_fresh_plan(world: World, journal: Journal) -> None:
    """Someone deployed 2.2.0 by hand between the plan and the click."""
    rollbot = rollbot_for(world, journal)
    run_id = planned(rollbot)
    world.docker.run_container("beef", f"{REPO}:2.2.0")
    world.compose.current = "beef"
    outcome = rollbot.decide(run_id, REQUESTER, Decision.CONFIRM, no_groups)
    assert outcome.refusal and "running_version" in outcome.refusal
    assert journal.run(run_id).status is RunStatus.CANCELLED
    assert outcome.replanned is not None and outcome.replanned.plan.running_version == "2.2.0"
    assert outcome.replanned.run.status is RunStatus.PLANNED


def test_cancel_by_the_requester_closes_the_plan(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    run_id = planned(rollbot)
    outcome = rollbot.decide(run_id, REQUESTER, Decision.CANCEL, no_groups)
    assert outcome.cancelled and journal.run(run_id).status is RunStatus.CANCELLED
    again = rollbot.decide(run_id, REQUESTER, Decision.CONFIRM, no_groups)
    assert again.refusal and "cancelled" in again.refusal


def test_two_simultaneous_approvals_start_exactly_one_run(world: World, journal: Journal) -> None:
    rollbot = rollbot_for(world, journal)
    run_id = planned(rollbot)
    barrier = threading.Barrier(2)
    outcomes = []

    def click(user: str) -> None:
        barrier.wait()
        outcomes.append(rollbot.decide(run_id, user, Decision.CONFIRM, no_groups))

    threads = [threading.Thread(target=click, args=(user,)) for user in (REQUESTER, APPROVER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    started = [o for o in outcomes if o.run is not None]
    refused = [o for o in outcomes if o.refusal]
    assert len(started) == 1 and len(refused) == 1
    assert (
        "already running" in (refused[0].refusal or "")
        or "not started" in (refused[0].refusal or "")
        or "succeeded" in (refused[0].refusal or "")
    )
    assert sum(1 for e in journal.run(run_id).events if e.kind == "run.started") == 1


def test_an_unknown_run_id_is_refused(world: World, journal: Journal) -> None:
    outcome = rollbot_for(world, journal).decide("no-such-run", APPROVER, Decision.CONFIRM, no_groups)
    assert outcome.refusal == "run 'no-such-run' is not known to rollbot; nothing was done"


def test_a_click_on_another_plans_message_is_refused(world: World, journal: Journal) -> None:
    """A button carries its run id; a click whose run id is not the run of the plan message it
    was clicked on (another plan, another target) is refused and changes nothing."""
    rollbot = rollbot_for(world, journal)
    run_id = planned(rollbot)
    rollbot.remember(run_id, plan_message={"channel": "C0PLANS", "ts": "1700000000.000100"})
    elsewhere = {"channel": "C0PLANS", "ts": "1700000000.000900"}
    outcome = rollbot.decide(run_id, REQUESTER, Decision.CONFIRM, no_groups, seen_on=elsewhere)
    assert outcome.refusal == f"run {run_id} (engine → 2.3.1) is not the plan on this message; nothing was done"
    assert journal.run(run_id).status is RunStatus.PLANNED
    assert world.compose.running_image() == f"{REPO}:2.4.0"

    own = {"channel": "C0PLANS", "ts": "1700000000.000100"}
    done = rollbot.decide(run_id, REQUESTER, Decision.CONFIRM, no_groups, seen_on=own)
    assert done.run is not None and done.run.status is RunStatus.SUCCEEDED
