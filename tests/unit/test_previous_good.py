"""`rollback engine` with no version: the previous good version, by one explained rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.rollbot import Rollbot
from bot.errors import InvalidRequest
from bot.planning.kept_images import KeptVersions
from bot.planning.plan import RollbackRequest
from bot.planning.previous_good import HealthySighting, known_versions, previous_good
from storage import Journal

from .fakes import REPO, FakeHealth, make_world

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def seen(version: str, hours_ago: float) -> HealthySighting:
    return HealthySighting(version, NOW - timedelta(hours=hours_ago), "healthy on brain schema 1, by status")


def test_the_version_seen_healthy_most_recently_wins_over_a_higher_number() -> None:
    kept = KeptVersions(5, ("2.3.1", "2.2.0"), "registry")
    choice = previous_good("2.4.0", [seen("2.3.1", 48), seen("2.2.0", 2), seen("2.4.0", 1)], kept)
    assert choice is not None and choice.version == "2.2.0"
    assert "last version rollbot saw healthy" in choice.why and "other than 2.4.0" in choice.why


def test_newer_versions_and_versions_whose_image_is_gone_are_not_candidates() -> None:
    kept = KeptVersions(5, ("2.2.0",), "registry")
    choice = previous_good("2.4.0", [seen("2.5.0", 1), seen("2.3.1", 2), seen("2.2.0", 30)], kept)
    assert choice is not None and choice.version == "2.2.0"


def test_never_seen_healthy_falls_back_to_the_newest_kept_image_and_says_so() -> None:
    choice = previous_good("2.4.0", [], KeptVersions(5, ("2.3.1", "2.2.0"), "registry and this host"))
    assert choice is not None and choice.version == "2.3.1"
    assert "has not seen it healthy" in choice.why and "registry and this host" in choice.why


def test_nothing_known_is_no_answer() -> None:
    assert previous_good("2.4.0", [seen("2.4.0", 1)], KeptVersions(5, (), "registry")) is None


def test_known_versions_are_newest_first_without_the_running_one() -> None:
    kept = KeptVersions(5, ("2.3.1", "2.10.0"), "registry")
    assert known_versions("2.11.0", [seen("2.9.3", 1), seen("2.11.0", 1)], kept) == ["2.10.0", "2.9.3", "2.3.1"]


def test_the_core_plans_the_previous_good_version_and_the_plan_says_why(tmp_path: Path, journal: Journal) -> None:
    world = make_world(tmp_path)
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    journal.saw_schema("engine", "2.2.0", 1, "status")  # 2.2.0 ran healthy, then 2.4.0 came
    planned = rollbot.plan_previous_good(RollbackRequest("engine", "", "U0ALICE01", "5xx since 2.4.0"))
    assert planned.plan.request.version == "2.2.0" and planned.plan.approvable
    chosen = planned.plan.checks[1]
    assert chosen.name == "version chosen by rollbot" and "2.2.0 is the previous good version" in chosen.detail
    assert journal.run(planned.run.id).to_version == "2.2.0"
    versions, previous = rollbot.known_versions("engine")
    assert versions == ["2.3.1", "2.2.0"] and previous is not None and previous.version == "2.2.0"
    rollbot.shutdown()


def test_the_core_refuses_by_name_when_it_knows_no_earlier_version(tmp_path: Path, journal: Journal) -> None:
    world = make_world(tmp_path)
    world.docker.registry = {f"{REPO}:2.4.0"}
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, set()))
    with pytest.raises(InvalidRequest, match="rollbot knows no earlier version of engine"):
        rollbot.plan_previous_good(RollbackRequest("engine", "", "U0ALICE01"))
    rollbot.shutdown()
