"""The error rate and p95 latency a check or plan reads from Prometheus, within a time budget.

Each criterion takes three queries (now, the baseline before the running version started, the
trend over the last minutes) and the failed requests one more. Every plan gathers them, and a
plan is what a person waits for after typing `/rollback`: a Prometheus that answers slowly must
not hold it. So all of one check's queries share `metrics.timeout_seconds` (default 5 s); each
query waits at most what is left, and what was not read in time is named ("not measured:
Prometheus at … did not answer within 5s"), which makes the verdict unsure, never a guess.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.config import MetricsConfig
from bot.errors import RollbotError
from bot.planning.judgement import MetricReading, series_values
from bot.ports import Metrics

BASELINE_POINTS, TREND_POINTS = 60, 30  # range queries' resolution: enough points, never thousands
SHORTEST_QUERY_SECONDS = 0.05  # less left than this: the budget is spent, the query is not sent


@dataclass
class Readings:
    """What one pass over the metrics read, and what it did not, with why."""

    error_rate: MetricReading | None = None
    latency: MetricReading | None = None
    failed_requests: float | None = None
    not_measured: list[str] = field(default_factory=list)  # not configured
    unreadable: list[str] = field(default_factory=list)  # configured, not read


class _Budget:
    """One check's patience with Prometheus, shared by all of its queries."""

    def __init__(self, seconds: float, timer: Callable[[], float]) -> None:
        self.seconds = seconds
        self._timer = timer
        self._deadline = timer() + seconds

    @property
    def spent(self) -> bool:
        return self._deadline - self._timer() < SHORTEST_QUERY_SECONDS

    def timeout(self) -> float:
        """What the next query may wait; `_TimeUp` when nothing is left to wait."""
        if self.spent:
            raise _TimeUp
        return self._deadline - self._timer()


class _TimeUp(Exception):
    """The budget ran out before the query was sent."""


def read_metrics(
    client: Metrics | None,
    config: MetricsConfig | None,
    started: datetime | None,
    now: datetime,
    timer: Callable[[], float] = time.monotonic,
) -> Readings:
    """The configured criteria, read within `config.timeout_seconds` in all."""
    readings = Readings()
    if config is None or client is None:
        readings.not_measured.append("error rate and p95 latency (no metrics.prometheus_url)")
        return readings
    budget = _Budget(config.timeout_seconds, timer)
    too_slow = f"not measured: Prometheus at {config.prometheus_url} did not answer within {budget.seconds:g}s"
    for name, key, query in (
        ("error rate", "error_rate_query", config.error_rate_query),
        ("p95 latency", "latency_query", config.latency_query),
    ):
        if query is None:
            readings.not_measured.append(f"{name} (no metrics.{key})")
            continue
        try:
            measured = _read(client, config, name, query, started, now, budget)
        except (RollbotError, _TimeUp) as error:
            readings.unreadable.append(f"{name} ({too_slow})" if budget.spent else f"{name}: {error}")
            continue
        if name == "error rate":
            readings.error_rate = measured
        else:
            readings.latency = measured
    if config.error_count_query and started is not None and readings.error_rate is not None:
        age = max(int((now - started).total_seconds()), 1)
        query = config.error_count_query.replace("$window", f"{age}s")
        try:
            readings.failed_requests = client.instant(config.prometheus_url, query, timeout=budget.timeout())
        except (RollbotError, _TimeUp) as error:
            readings.unreadable.append(f"failed requests ({too_slow})" if budget.spent else f"failed requests: {error}")
    return readings


def _read(
    client: Metrics,
    config: MetricsConfig,
    name: str,
    query: str,
    started: datetime | None,
    now: datetime,
    budget: _Budget,
) -> MetricReading:
    """Now, the baseline before `started` (its mean) and the trend since max(started, now − trend)."""
    url = config.prometheus_url
    value = client.instant(url, query, now, timeout=budget.timeout())
    baseline = None
    if started is not None:
        window = timedelta(seconds=config.baseline_seconds)
        step = max(config.baseline_seconds / BASELINE_POINTS, 1)
        points = series_values(client.series(url, query, started - window, started, step, timeout=budget.timeout()))
        baseline = statistics.fmean(points) if points else None
    trend_start = now - timedelta(seconds=config.trend_seconds)
    if started is not None and started > trend_start:
        trend_start = started
    step = max(config.trend_seconds / TREND_POINTS, 1)
    trend = series_values(client.series(url, query, trend_start, now, step, timeout=budget.timeout()))
    return MetricReading(name, value, baseline, trend)
