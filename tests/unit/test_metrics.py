"""/metrics: read from the journal, in Prometheus' text format, parsed back as Prometheus would."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.core.rollbot import Rollbot
from storage import Journal

from .fakes import FakeHealth
from .test_brain_runner import Restore


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_metrics_after_a_run_show_its_outcome_its_step_durations_and_the_snapshot_age(
    tmp_path: Path, journal: Journal
) -> None:
    scene = Restore(tmp_path)
    run_id, plan = scene.plan(journal)
    run = scene.run(journal, run_id, plan)
    rollbot = Rollbot(scene.world.config, journal, scene.world.systems(), FakeHealth(scene.world.compose, {"2.3.1"}))

    found = samples(rollbot.metrics())

    assert found[("rollbot_runs_total", (("kind", "rollback"), ("status", "succeeded"), ("target", "engine")))] == 1
    assert found[("rollbot_runs_in_progress", (("target", "engine"),))] == 0
    for step in run.steps:
        labels = (("status", "succeeded"), ("step", step.name), ("target", "engine"))
        assert found[("rollbot_step_duration_seconds_count", labels)] == 1
        assert abs(found[("rollbot_step_duration_seconds_sum", labels)] - (step.seconds or 0)) < 1e-6
    age = found[("rollbot_snapshot_age_seconds", (("target", "engine"),))]
    assert 3590 < age < 3700, "the scene's snapshot was taken an hour ago"
