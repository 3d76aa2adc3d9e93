"""`check`: the evidence the runbook's "When to roll back" asks for, gathered now, and its verdict.

Health comes from `/health` (one short probe); since when it has not been ok, from the earlier
of rollbot's own probes (bot/core/probe_record.py) and Docker's health log, naming which; the
running version's age from its container; error rate and p95 latency from the Engine's
Prometheus, now against the baseline window before the running version started and over the
last minutes, within a time budget (bot/core/metric_readings.py); the regression eval from its command or URL. Whatever cannot be read is named,
never guessed: the verdict is then unsure, and the plan and the postmortem say which criteria
were not measured. The same evidence is shown on every plan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.config import Config, TargetConfig
from bot.core.metric_readings import read_metrics
from bot.core.queries import Queries
from bot.errors import InvalidRequest, RollbotError
from bot.planning.judgement import Evidence, Judgement, judge
from bot.planning.plan import Systems
from bot.ports import ContainerFacts, EvalResult, Health

log = logging.getLogger(__name__)

HEALTH_PROBE_SECONDS = 1.0
EVAL_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class _Failing:
    """Since when /health has not been ok, by which source, and rollbot's last ok probe."""

    since: datetime | None = None
    source: str | None = None
    last_ok: datetime | None = None


class Checking:
    def __init__(
        self,
        config: Config,
        systems: Systems,
        health: Health,
        queries: Queries,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._systems = systems
        self._health = health
        self._queries = queries
        self._clock = clock
        self._timer = timer  # measures the time Prometheus is given (bot/core/metric_readings.py)

    def check(self, target_name: str) -> Judgement:
        """The verdict on the target as it is now; an unknown target is an `InvalidRequest`."""
        target = self._config.target(target_name)
        if target is None:
            known = ", ".join(sorted(self._config.targets)) or "none"
            raise InvalidRequest(f"unknown target {target_name!r}; configured targets: {known}")
        return judge(self.evidence(target), target.metrics)

    def for_plan(self, target: TargetConfig) -> Judgement | None:
        """The same verdict for a plan's evidence block; a plan is never refused for want of it."""
        try:
            return judge(self.evidence(target), target.metrics)
        except RollbotError as error:
            log.warning("could not gather the evidence for %s's plan: %s", target.name, error)
            return None
        except Exception:  # a bug here must not stop a rollback being planned
            log.exception("gathering the evidence for %s's plan failed unexpectedly", target.name)
            return None

    def evidence(self, target: TargetConfig) -> Evidence:
        now = self._clock()
        container = self._container(target)
        started = container.started_at if container else None
        probe = self._health.wait_until_healthy(target.health_url, HEALTH_PROBE_SECONDS)
        failing = _Failing() if probe.ok else self._failing(target, container)
        reading = read_metrics(self._systems.metrics, target.metrics, started, now, self._timer)
        not_measured = reading.not_measured
        return Evidence(
            target=target.name,
            running_version=container.tag if container else None,
            running_since=started,
            previous_good=self._previous_good(target, container),
            health_ok=probe.ok,
            health=probe.describe(),
            failing_since=failing.since,
            failing_source=failing.source,
            last_ok_probe=failing.last_ok,
            error_rate=reading.error_rate,
            latency=reading.latency,
            failed_requests=reading.failed_requests,
            regression_eval=self._eval(target, not_measured),
            not_measured=tuple(not_measured),
            unreadable=tuple(reading.unreadable),
            checked_at=now,
        )

    def _container(self, target: TargetConfig) -> ContainerFacts | None:
        try:
            container_id = self._systems.compose_for(target).container_id(target.service)
            return self._systems.docker.container(container_id) if container_id else None
        except RollbotError as error:
            log.warning("could not look at %s's container: %s", target.name, error)
            return None

    def _previous_good(self, target: TargetConfig, container: ContainerFacts | None) -> str | None:
        kept = self._queries.kept(container.image if container else None, target.keep_images)
        return kept.earlier[0] if kept and kept.earlier else None

    def _failing(self, target: TargetConfig, container: ContainerFacts | None) -> _Failing:
        """The earlier known start of the failure: Docker's health log (with a healthcheck) or
        rollbot's own probes (any target; the first failing one after the last ok one)."""
        known: list[tuple[datetime, str]] = []
        docker_since = self._failing_since(container.id) if container is not None else None
        if docker_since is not None:
            known.append((docker_since, "Docker's health log"))
        record = self._queries.health_record(target.name)
        probed_since = record.failing_since if record is not None else None
        if record is not None and probed_since is not None:
            known.append((probed_since, f"rollbot's probes, first failing in {record.since_source}"))
        last_ok = record.last_ok_at if record is not None else None
        if not known:
            return _Failing(last_ok=last_ok)
        since, source = min(known, key=lambda found: found[0])
        return _Failing(since, source, last_ok)

    def _failing_since(self, container_id: str) -> datetime | None:
        """The start of the newest unbroken run of failing checks in Docker's health log, when
        the container has a healthcheck; None when it has none or its last check passed."""
        try:
            log_entries = (self._systems.docker.inspect(container_id).get("State", {}).get("Health") or {}).get("Log")
        except RollbotError:
            return None
        since = None
        for entry in reversed(log_entries or []):
            if entry.get("ExitCode") == 0:
                break
            since = _parse_time(entry.get("Start"))
        return since

    def _eval(self, target: TargetConfig, not_measured: list[str]) -> EvalResult | None:
        if target.regression_eval is None or self._systems.evals is None:
            not_measured.append("regression eval (no regression_eval)")
            return None
        return self._systems.evals.run(target.regression_eval, EVAL_TIMEOUT_SECONDS)


def _parse_time(raw: object) -> datetime | None:
    """Docker writes nanoseconds (`2026-01-02T03:04:05.123456789Z`); Python reads microseconds."""
    if not isinstance(raw, str):
        return None
    head, _, fraction = raw.rstrip("Z").partition(".")
    try:
        parsed = datetime.fromisoformat(head + (f".{fraction[:6]}" if fraction else ""))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
