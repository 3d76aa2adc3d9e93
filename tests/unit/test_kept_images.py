"""Keep the last N versions: the plan and the status warn when fewer earlier versions exist."""

from __future__ import annotations

from pathlib import Path

from bot.core.rollbot import Rollbot
from bot.planning.kept_images import kept_versions
from bot.planning.plan import RollbackRequest
from storage import Journal

from .fakes import REPO, FakeDocker, FakeHealth, make_world


def test_earlier_versions_sort_as_versions_not_as_text() -> None:
    docker = FakeDocker(
        registry={f"{REPO}:{tag}" for tag in ("2.10.0", "2.9.1", "2.3.1", "latest", "3.0.0")},
        host={f"{REPO}:2.2.0", "other/engine:1.0.0"},
    )
    kept = kept_versions(docker, f"{REPO}:2.10.1", keep=5)
    assert kept is not None
    assert kept.earlier == ("2.10.0", "2.9.1", "2.3.1", "2.2.0")
    assert kept.warning == (
        "only 4 earlier version(s) to roll back to (2.10.0, 2.9.1, 2.3.1, 2.2.0); the runbook says keep the last 5"
    )
    assert kept_versions(docker, f"{REPO}:2.10.1", keep=4).warning is None  # type: ignore[union-attr]
    assert kept_versions(docker, f"{REPO}:latest", keep=5) is None, "no number: nothing to compare with"


def test_the_plan_and_the_status_warn_when_too_few_earlier_versions_are_kept(tmp_path: Path, journal: Journal) -> None:
    world = make_world(tmp_path, keep_images=3)
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))

    planned = rollbot.plan(RollbackRequest("engine", "2.3.1", "cli:alice"))

    assert planned.plan.approvable, planned.plan.refusal
    assert planned.plan.kept is not None and planned.plan.kept.earlier == ("2.3.1", "2.2.0")
    assert planned.plan.kept.warning is not None and "keep the last 3" in planned.plan.kept.warning
    [status] = rollbot.status()
    assert status.kept == planned.plan.kept
