"""`check`'s evidence from the fakes behind bot/ports.py: health and Docker's health log, the
previous good version, and what it says it did not measure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.core.checking import Checking
from bot.core.queries import Queries
from bot.planning.judgement import Call
from storage import Journal

from .fakes import FakeHealth, make_world

FAILING_LOG = [
    {"Start": "2026-12-05T07:58:00.123456789Z", "ExitCode": 0},
    {"Start": "2026-12-05T07:59:00.5Z", "ExitCode": 1},
    {"Start": "2026-12-05T08:00:00Z", "ExitCode": 1},
]


def test_unhealthy_engine_rolls_back_naming_since_when_and_what_was_not_measured(
    tmp_path: Path, journal: Journal
) -> None:
    world = make_world(tmp_path)
    plain = world.docker.inspect

    def with_health_log(container_id: str) -> dict[str, Any]:
        attrs = plain(container_id)
        return {**attrs, "State": {**attrs["State"], "Health": {"Status": "unhealthy", "Log": FAILING_LOG}}}  # type: ignore[dict-item]

    world.docker.inspect = with_health_log  # type: ignore[method-assign]
    health = FakeHealth(world.compose, {"2.3.1"})
    checking = Checking(
        world.config, world.systems(), health, Queries(world.config, journal, world.systems(), health, None)
    )

    verdict = checking.check("engine")

    assert verdict.call is Call.ROLL_BACK
    assert verdict.headline.startswith("Roll back to 2.3.1: /health is not ok since 07:59:00 UTC (not healthy")
    assert "not measured: error rate and p95 latency (no metrics.prometheus_url)" in verdict.evidence
    assert "not measured: regression eval (no regression_eval)" in verdict.evidence
    assert verdict.evidence[-1] == "previous good version: 2.3.1"


def test_healthy_engine_on_health_alone_is_no_rollback(tmp_path: Path, journal: Journal) -> None:
    world = make_world(tmp_path)
    health = FakeHealth(world.compose, {"2.4.0"})
    checking = Checking(
        world.config, world.systems(), health, Queries(world.config, journal, world.systems(), health, None)
    )
    verdict = checking.check("engine")
    assert verdict.call is Call.DONT
    assert verdict.headline == "Don't roll back: /health is ok (judged on health alone)"
