"""The known-bad store on both backends, and what marks and clears a version (bot/core/upgrades.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.config import Config
from bot.core.upgrades import clear_known_bad, fallback_request, mark_rolled_back
from bot.errors import InvalidRequest
from storage import EventKind, Journal, NotStartable, RunKind, RunStatus, connect
from storage.models import EventRow
from storage.repository import NewRun
from tests.unit.test_storage import TickingClock

STEPS = [("set_image_tag", "switch"), ("verify_health", "poll")]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = connect(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def journal(engine: Engine) -> Journal:
    return Journal(engine, clock=TickingClock())


def finished(
    journal: Journal,
    kind: RunKind,
    status: RunStatus,
    from_version: str = "2.4.0",
    to_version: str = "2.3.1",
    summary: dict[str, object] | None = None,
) -> str:
    run = journal.record_plan(
        NewRun("engine", to_version, "U0ALICE", STEPS, "production", from_version, "5xx after deploy", kind),
        actor="U0ALICE",
    )
    journal.start(run.id, "rollbot", "owner-1", approver="U0BOB")
    journal.finish(
        run.id, "rollbot", status, None if status is RunStatus.SUCCEEDED else "step failed", None, summary or {}
    )
    return run.id


def test_a_mark_names_its_run_and_a_clear_keeps_it_with_who_and_why(journal: Journal, engine: Engine) -> None:
    run_id = finished(journal, RunKind.ROLLBACK, RunStatus.SUCCEEDED)
    mark = journal.mark_known_bad("engine", "2.4.0", run_id, "5xx after deploy", "rollbot")

    found = journal.known_bad("engine", "2.4.0")
    assert found == mark and found.active and found.run_id == run_id
    assert journal.known_bad("engine", "2.3.1") is None and journal.known_bad("other", "2.4.0") is None
    assert f"rolled back by run {run_id}" in found.describe() and "5xx after deploy" in found.describe()

    [cleared] = journal.clear_known_bad("engine", "2.4.0", "U0CAROL", "fixed the index migration in 2.4.1")
    assert journal.known_bad("engine", "2.4.0") is None
    assert cleared.cleared_by == "U0CAROL" and not cleared.active
    assert "cleared by U0CAROL" in cleared.describe() and "fixed the index migration" in cleared.describe()
    [kept] = journal.known_bad_versions("engine")
    assert kept.cleared_reason == "fixed the index migration in 2.4.1"
    assert journal.known_bad_versions("engine", active_only=True) == []
    with Session(engine) as session:
        events = session.scalars(select(EventRow).where(EventRow.kind == EventKind.KNOWN_BAD_CLEARED)).all()
        journaled = [(e.run_id, e.actor, e.details["version"], e.details["runs"]) for e in events]
    assert journaled == [(None, "U0CAROL", "2.4.0", [run_id])]


def test_marking_the_same_run_twice_writes_one_mark(journal: Journal) -> None:
    run_id = finished(journal, RunKind.ROLLBACK, RunStatus.SUCCEEDED)
    journal.mark_known_bad("engine", "2.4.0", run_id, "", "rollbot")
    journal.mark_known_bad("engine", "2.4.0", run_id, "", "rollbot")
    assert len(journal.known_bad_versions("engine")) == 1


def test_clearing_what_is_not_marked_clears_nothing(journal: Journal) -> None:
    assert journal.clear_known_bad("engine", "2.4.0", "U0CAROL", "why not") == []


def test_a_successful_rollback_marks_the_version_it_left(journal: Journal) -> None:
    run_id = finished(journal, RunKind.ROLLBACK, RunStatus.SUCCEEDED)
    mark = mark_rolled_back(journal, journal.run(run_id))
    assert mark is not None and (mark.version, mark.run_id, mark.reason) == ("2.4.0", run_id, "5xx after deploy")


@pytest.mark.parametrize(
    ("kind", "status", "summary"),
    [
        (RunKind.ROLLBACK, RunStatus.FAILED, {}),
        (RunKind.UPGRADE, RunStatus.SUCCEEDED, {}),
        (RunKind.UPGRADE, RunStatus.FAILED, {"failed_step": "verify_health"}),  # left running: not rolled back yet
    ],
)
def test_runs_that_did_not_go_back_mark_nothing(
    journal: Journal, kind: RunKind, status: RunStatus, summary: dict[str, object]
) -> None:
    run_id = finished(journal, kind, status, summary=summary)
    assert mark_rolled_back(journal, journal.run(run_id)) is None
    assert journal.known_bad_versions() == []


def test_an_upgrade_whose_runner_started_the_previous_version_again_marks_the_new_one(journal: Journal) -> None:
    run_id = finished(
        journal,
        RunKind.UPGRADE,
        RunStatus.FAILED,
        from_version="2.3.1",
        to_version="2.4.0",
        summary={"failed_step": "start", "after_failure": "started 2.3.1 again"},
    )
    mark = mark_rolled_back(journal, journal.run(run_id))
    assert mark is not None and mark.version == "2.4.0" and "the upgrade to it failed" in mark.reason


def test_an_unhealthy_upgrade_is_offered_the_rollback_to_the_version_before_it(journal: Journal) -> None:
    run_id = finished(journal, RunKind.UPGRADE, RunStatus.FAILED, "2.3.1", "2.4.0", {"failed_step": "verify_health"})
    request = fallback_request(journal.run(run_id))
    assert request is not None
    assert (request.target, request.version, request.requester, request.kind) == (
        "engine",
        "2.3.1",
        "U0ALICE",
        RunKind.ROLLBACK,
    )
    assert run_id in request.reason and "health check" in request.reason
    persisting = finished(journal, RunKind.UPGRADE, RunStatus.SUCCEEDED, "2.3.1", "2.4.0", {"errors_persist": "3%"})
    assert fallback_request(journal.run(persisting)) is not None


def test_a_good_upgrade_or_a_rollback_is_offered_nothing(journal: Journal) -> None:
    good = finished(journal, RunKind.UPGRADE, RunStatus.SUCCEEDED, "2.3.1", "2.4.0")
    rolled = finished(journal, RunKind.ROLLBACK, RunStatus.FAILED, summary={"failed_step": "verify_health"})
    assert fallback_request(journal.run(good)) is None and fallback_request(journal.run(rolled)) is None


def test_a_clear_needs_a_known_target_a_tag_a_reason_and_a_mark(journal: Journal) -> None:
    config = Config.model_validate(
        {
            "targets": {
                "engine": {
                    "environment": "staging",
                    "compose_file": "/srv/c.yml",
                    "service": "engine",
                    "health_url": "http://127.0.0.1:1/health",
                }
            }
        }
    )
    with pytest.raises(InvalidRequest, match="unknown target"):
        clear_known_bad(config, journal, "nope", "2.4.0", "U0CAROL", "fixed")
    with pytest.raises(InvalidRequest, match="not a Docker tag"):
        clear_known_bad(config, journal, "engine", "../x", "U0CAROL", "fixed")
    with pytest.raises(InvalidRequest, match="needs a reason"):
        clear_known_bad(config, journal, "engine", "2.4.0", "U0CAROL", "  ")
    with pytest.raises(InvalidRequest, match="not known-bad"):
        clear_known_bad(config, journal, "engine", "2.4.0", "U0CAROL", "fixed")


def test_an_upgrade_holds_its_target_like_a_rollback(journal: Journal) -> None:
    """The one-run-per-target index covers upgrades: no rollback starts while an upgrade runs."""
    upgrade = journal.record_plan(
        NewRun("engine", "2.4.0", "U0ALICE", STEPS, "production", "2.3.1", "", RunKind.UPGRADE), actor="U0ALICE"
    )
    rollback = journal.record_plan(NewRun("engine", "2.2.0", "U0ALICE", STEPS, "production", "2.3.1"), actor="U0ALICE")
    journal.start(upgrade.id, "rollbot", "owner-1")
    with pytest.raises(NotStartable):
        journal.start(rollback.id, "rollbot", "owner-2")
