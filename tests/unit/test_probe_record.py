"""rollbot's own /health probes, remembered per target: "not ok since when" for a target whose
container has no Docker healthcheck, the earlier of both sources otherwise, and bounded storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.core.checking import Checking
from bot.core.probe_record import RecordingHealth
from bot.core.queries import Queries
from bot.core.rollbot import Rollbot
from bot.planning.judgement import Call, Judgement
from bot.planning.plan import RollbackRequest
from bot.ports import HealthResult
from storage import Journal, RunStatus, connect
from storage.models import HealthProbeRow

from .fakes import FakeHealth, World, make_world

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
URL = "http://127.0.0.1:8080/health"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Answers:
    """/health answering as scripted: True ok, False 503 after polling `seconds`."""

    def __init__(self, seconds: float = 2.0) -> None:
        self.ok = True
        self.seconds = seconds

    def wait_until_healthy(self, url: str, timeout: float) -> HealthResult:
        if self.ok:
            return HealthResult(True, 200, '{"status": "ok"}', None, 1, 0.0)
        return HealthResult(False, 503, '{"status": "failing"}', None, 5, self.seconds)


def test_the_record_keeps_when_the_state_began_and_the_last_ok_probe(database_url: str) -> None:
    journal = Journal(connect(database_url))
    probe = lambda ok, minute, source: journal.probed(  # noqa: E731
        "engine", ok, "answer", source, T0 + timedelta(minutes=minute), T0 + timedelta(minutes=minute, seconds=-2)
    )
    assert journal.health_record("engine") is None
    probe(True, 0, "status")
    probe(True, 1, "check")
    probe(False, 2, "a run")
    probe(False, 3, "check")
    record = journal.health_record("engine")
    assert record is not None and not record.ok
    assert record.failing_since == T0 + timedelta(minutes=2, seconds=-2), "the first failing probe's start"
    assert record.since_source == "a run" and record.source == "check"
    assert record.last_ok_at == T0 + timedelta(minutes=1)

    probe(False, 1, "status")  # an answer that arrives late says nothing newer
    assert journal.health_record("engine") == record

    probe(True, 4, "status")
    healthy = journal.health_record("engine")
    assert healthy is not None and healthy.ok and healthy.failing_since is None
    assert healthy.since == T0 + timedelta(minutes=4) and healthy.last_ok_at == healthy.since
    with journal._sessions() as session:
        assert session.scalar(select(func.count()).select_from(HealthProbeRow)) == 1, "one row, not one per probe"


class Rollbots:
    """rollbot's parts over one journal and clock: `check()` as check does it, `probe(source)` as
    status, a run or a snapshot probes /health, each recording what it found."""

    def __init__(self, world: World, journal: Journal, health: Answers, clock: Clock) -> None:
        self._world, self._journal, self._health, self._clock = world, journal, health, clock
        queries = Queries(world.config, journal, world.systems(), health, None)
        self._checking = Checking(world.config, world.systems(), self._recording("check"), queries, clock)

    def _recording(self, source: str) -> RecordingHealth:
        return RecordingHealth(self._health, self._journal, self._world.config, source, self._clock)

    def probe(self, source: str) -> HealthResult:
        return self._recording(source).wait_until_healthy(URL, 2)

    def check(self) -> Judgement:
        return self._checking.check("engine")


def test_without_a_docker_healthcheck_rollbots_own_probes_say_since_when(tmp_path: Path, journal: Journal) -> None:
    world = make_world(tmp_path)
    health, clock = Answers(), Clock()
    rollbot = Rollbots(world, journal, health, clock)
    rollbot.probe("status")  # healthy at 08:00:00
    clock.advance(60)
    health.ok = False
    rollbot.probe("a run")  # failing from 08:00:58 (its two seconds of polling) to 08:01:00
    clock.advance(240)

    verdict = rollbot.check()

    assert verdict.call is Call.ROLL_BACK
    assert verdict.headline.startswith("Roll back to 2.3.1: /health is not ok since 08:00:58 UTC")
    [health_line] = [line for line in verdict.evidence if line.startswith("health:")]
    assert health_line.startswith(
        "health: NOT ok, not ok since 08:00:58 UTC (rollbot's probes, first failing in a run; "
        "rollbot's last ok probe 08:00:00 UTC) — not healthy after 5 check(s)"
    )


def test_the_earlier_of_dockers_health_log_and_rollbots_probes_is_reported(tmp_path: Path, journal: Journal) -> None:
    world = make_world(tmp_path)
    plain = world.docker.inspect
    docker_log = [{"Start": "2026-12-05T08:03:00Z", "ExitCode": 1}]

    def with_health_log(container_id: str) -> dict[str, Any]:
        attrs = plain(container_id)
        return {**attrs, "State": {**attrs["State"], "Health": {"Status": "unhealthy", "Log": docker_log}}}  # type: ignore[dict-item]

    world.docker.inspect = with_health_log  # type: ignore[method-assign]
    health, clock = Answers(), Clock()
    rollbot = Rollbots(world, journal, health, clock)
    health.ok = False
    clock.advance(5 * 60)
    rollbot.probe("status")  # rollbot saw it failing from 08:04:58: Docker's 08:03:00 is earlier
    clock.advance(60)

    told_by_docker = rollbot.check()
    assert "not ok since 08:03:00 UTC (Docker's health log)" in "\n".join(told_by_docker.evidence)

    docker_log[0]["Start"] = "2026-12-05T08:05:30Z"  # Docker's log keeps 5 results: its start moved on
    told_by_rollbot = rollbot.check()
    assert "not ok since 08:04:58 UTC (rollbot's probes, first failing in status)" in "\n".join(
        told_by_rollbot.evidence
    )


def test_a_failure_that_began_on_another_day_shows_its_date(tmp_path: Path, journal: Journal) -> None:
    world = make_world(tmp_path)
    health, clock = Answers(seconds=0), Clock()
    rollbot = Rollbots(world, journal, health, clock)
    health.ok = False
    rollbot.probe("status")
    clock.advance(24 * 3600)
    verdict = rollbot.check()
    assert "/health is not ok since 2026-12-05 08:00:00 UTC" in verdict.headline


def test_every_part_of_rollbot_that_probes_records_it(world: World, journal: Journal) -> None:
    """status (and App Home, which shows it), a run's health check and soak, the check itself."""
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))

    rollbot.status()
    seen_by_status = journal.health_record("engine")
    assert seen_by_status is not None and not seen_by_status.ok and seen_by_status.source == "status"

    verdict = rollbot.check("engine")
    assert f"not ok since {seen_by_status.since:%H:%M:%S} UTC (rollbot's probes, first failing in status" in "\n".join(
        verdict.evidence
    )

    run = rollbot.execute(rollbot.plan(RollbackRequest("engine", "2.3.1", "U0REQUEST", "5xx")), "cli")
    seen_by_run = journal.health_record("engine")
    assert run.status is RunStatus.SUCCEEDED
    assert seen_by_run is not None and seen_by_run.ok and seen_by_run.source == "a run"
    assert seen_by_run.last_ok_at == seen_by_run.probed_at
