"""The verdict from evidence: each of the runbook's "roll back" and "don't" cases, and unsure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import MetricsConfig
from bot.planning.judgement import Call, Evidence, Judgement, MetricReading, judge
from bot.ports import EvalResult

METRICS = MetricsConfig(prometheus_url="http://127.0.0.1:9090", error_rate_query="e", latency_query="l")
STARTED = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def evidence(**changes: object) -> Evidence:
    base = Evidence(
        target="engine",
        running_version="2.4.0",
        running_since=STARTED,
        previous_good="2.3.1",
        health_ok=True,
        health="healthy (HTTP 200)",
        error_rate=MetricReading("error rate", 0.001, 0.001, (0.001,) * 9),
        latency=MetricReading("p95 latency", 0.05, 0.05, (0.05,) * 9),
    )
    return Evidence(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_healthy_and_within_tolerance_is_no_rollback() -> None:
    verdict = judge(evidence(), METRICS)
    assert verdict.call is Call.DONT
    assert verdict.headline == (
        "Don't roll back: /health is ok; error rate and latency are within tolerance of the baseline"
    )


def test_health_not_ok_rolls_back_to_the_previous_good_version() -> None:
    verdict = judge(evidence(health_ok=False, health="HTTP 503", failing_since=STARTED), METRICS)
    assert verdict.call is Call.ROLL_BACK
    assert verdict.headline == "Roll back to 2.3.1: /health is not ok since 08:00:00 UTC (HTTP 503)"


def test_sustained_sharp_error_rate_rolls_back_with_the_numbers() -> None:
    rate = MetricReading("error rate", 0.5, 0.001, (0.4, 0.5, 0.5, 0.5, 0.5, 0.5))
    verdict = judge(evidence(error_rate=rate, failed_requests=120), METRICS)
    assert verdict.call is Call.ROLL_BACK
    assert verdict.reasons == ("error rate 50.0% vs 0.1% before 2.4.0 (≥ 2× the baseline), rising (45.0% → 50.0%)",)


def test_one_bad_request_is_not_a_reason() -> None:
    rate = MetricReading("error rate", 0.04, 0.0, (0.0, 0.0, 0.04, 0.04))
    verdict = judge(evidence(error_rate=rate, failed_requests=1), METRICS)
    assert verdict.call is Call.DONT
    assert "only 1 failed request(s) since it started: a bad request, not the service" in verdict.reasons[0]


def test_one_outlier_is_not_a_reason() -> None:
    latency = MetricReading("p95 latency", 0.5, 0.05, (0.05, 0.05, 0.05, 0.05, 0.5))
    verdict = judge(evidence(latency=latency), METRICS)
    assert verdict.call is Call.DONT
    assert "is one outlier: its median over the last minutes is 50 ms" in verdict.reasons[0]


def test_sharply_worse_but_improving_is_watched_not_rolled_back() -> None:
    latency = MetricReading("p95 latency", 0.3, 0.05, (0.9, 0.9, 0.6, 0.5, 0.3, 0.3))
    verdict = judge(evidence(latency=latency), METRICS)
    assert verdict.call is Call.DONT
    assert verdict.reasons[0].endswith("is sharply worse but improving (900 ms → 300 ms): watch it")


def test_failing_regression_eval_rolls_back() -> None:
    verdict = judge(evidence(regression_eval=EvalResult(False, "`pytest evals` failed (exit 1)")), METRICS)
    assert verdict.call is Call.ROLL_BACK
    assert verdict.reasons == ("the regression eval fails: `pytest evals` failed (exit 1)",)


def test_unreadable_metrics_are_unsure_and_say_roll_back() -> None:
    verdict = judge(
        evidence(error_rate=None, latency=None, unreadable=("error rate: Prometheus did not answer",)), METRICS
    )
    assert verdict.call is Call.UNSURE
    assert verdict.headline == (
        "Cannot tell (could not read error rate: Prometheus did not answer). "
        "The runbook says: if you're unsure, roll back"
    )


def test_health_alone_says_what_it_did_not_measure() -> None:
    verdict = judge(
        evidence(
            error_rate=None, latency=None, not_measured=("error rate and p95 latency (no metrics.prometheus_url)",)
        ),
        None,
    )
    assert verdict.call is Call.DONT
    assert verdict.headline == "Don't roll back: /health is ok (judged on health alone)"
    assert "not measured: error rate and p95 latency (no metrics.prometheus_url)" in verdict.evidence


@pytest.mark.parametrize("call", list(Call))
def test_a_judgement_reads_back_from_the_journal(call: Call) -> None:
    verdict = judge(evidence(), METRICS)
    verdict = Judgement(call, verdict.reasons, verdict.evidence, "2.3.1", STARTED, 0.001, 0.05, ("x",))
    stored = {**verdict.__dict__, "call": str(call), "running_since": STARTED.isoformat()}
    assert Judgement.from_dict(stored) == verdict
