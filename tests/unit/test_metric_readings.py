"""A check's reads of Prometheus share one time budget: a slow Prometheus costs a plan at most
`metrics.timeout_seconds`, and what was not read in time is named and makes the verdict unsure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.config import MetricsConfig
from bot.core.metric_readings import read_metrics
from bot.errors import MetricsError
from bot.planning.judgement import Call, Evidence, judge
from bot.ports import Series

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
STARTED = NOW - timedelta(minutes=3)
CONFIG = MetricsConfig(
    prometheus_url="http://127.0.0.1:9090",
    error_rate_query="errors",
    latency_query="latency",
    error_count_query="failed[$window]",
    timeout_seconds=5,
)


class SlowPrometheus:
    """Answers every query after `delay` seconds of a fake clock, or, given less time than that,
    waits what it was given and fails as the HTTP client's timeout does."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.now = 0.0
        self.given: list[float | None] = []

    def timer(self) -> float:
        return self.now

    def _wait(self, timeout: float | None) -> None:
        self.given.append(timeout)
        if timeout is not None and timeout < self.delay:
            self.now += timeout
            raise MetricsError("Prometheus at http://127.0.0.1:9090 did not answer: ReadTimeout: timed out")
        self.now += self.delay

    def instant(
        self, base_url: str, query: str, at: datetime | None = None, timeout: float | None = None
    ) -> float | None:
        self._wait(timeout)
        return 0.002

    def series(
        self, base_url: str, query: str, start: datetime, end: datetime, step: float, timeout: float | None = None
    ) -> Series:
        self._wait(timeout)
        return [(start, 0.001), (end, 0.002)]


def test_a_quick_prometheus_is_read_whole_each_query_given_what_is_left() -> None:
    prometheus = SlowPrometheus(delay=0.01)
    readings = read_metrics(prometheus, CONFIG, STARTED, NOW, prometheus.timer)
    assert readings.error_rate is not None and readings.latency is not None
    assert readings.failed_requests == 0.002 and readings.unreadable == []
    assert len(prometheus.given) == 7
    assert all(given is not None and given <= 5 for given in prometheus.given)
    assert prometheus.given == sorted(prometheus.given, reverse=True), "each waits at most what the last left"


def test_a_slow_prometheus_holds_a_check_no_longer_than_its_budget_and_says_so() -> None:
    prometheus = SlowPrometheus(delay=2)
    readings = read_metrics(prometheus, CONFIG, STARTED, NOW, prometheus.timer)

    assert prometheus.now == 5, "two answers in 4 s, then the third gave up at the budget's end"
    assert len(prometheus.given) == 3, "no query is sent once the budget is spent"
    too_slow = "not measured: Prometheus at http://127.0.0.1:9090 did not answer within 5s"
    assert readings.unreadable == [f"error rate ({too_slow})", f"p95 latency ({too_slow})"]
    assert readings.error_rate is None and readings.failed_requests is None

    evidence = Evidence(
        target="engine",
        running_version="2.4.0",
        running_since=STARTED,
        previous_good="2.3.1",
        health_ok=True,
        health="healthy (HTTP 200) after 1 check(s), 0.0s",
        unreadable=tuple(readings.unreadable),
        checked_at=NOW,
    )
    verdict = judge(evidence, CONFIG)
    assert verdict.call is Call.UNSURE
    assert f"could not read: error rate ({too_slow})" in verdict.evidence


def test_without_metrics_nothing_is_asked_and_it_says_what_was_not_measured() -> None:
    readings = read_metrics(None, None, STARTED, NOW)
    assert readings.not_measured == ["error rate and p95 latency (no metrics.prometheus_url)"]
