"""The all-clear's soak window: recovered errors end it, persisting ones end "errors persist"."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.config import MetricsConfig, TargetConfig
from bot.errors import MetricsError
from bot.planning.judgement import Call, Judgement
from bot.ports import HealthResult, Series
from bot.running.soak import Soak


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ScriptedHealth:
    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers

    def wait_until_healthy(self, url: str, timeout: float) -> HealthResult:
        ok = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return HealthResult(ok, 200 if ok else 503, "", None, 1, 0.01)


class ScriptedRates:
    """Prometheus' answers in order; an exception in the list is raised instead."""

    def __init__(self, answers: list[float | Exception | None]) -> None:
        self.answers = answers

    def instant(
        self, base_url: str, query: str, at: datetime | None = None, timeout: float | None = None
    ) -> float | None:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def series(
        self, base_url: str, query: str, start: datetime, end: datetime, step: float, timeout: float | None = None
    ) -> Series:
        return []


def target(soak: int = 3, metrics: bool = True) -> TargetConfig:
    return TargetConfig(
        name="engine",
        compose_file=Path("docker-compose.yml"),
        service="engine",
        health_url="http://127.0.0.1:8080/health",
        soak_seconds=soak,
        metrics=MetricsConfig(prometheus_url="http://127.0.0.1:9", error_rate_query="q") if metrics else None,
    )


JUDGED = Judgement(Call.ROLL_BACK, ("x",), (), error_baseline=0.002)


def test_errors_recovered_after_a_clean_window() -> None:
    clock, counted = Clock(), []
    soak = Soak(ScriptedHealth([True]), ScriptedRates([0.3, 0.2, 0.0]), clock, clock.sleep)
    result = soak.wait(target(), JUDGED, counted.append)
    assert result.recovered
    assert result.text == "errors recovered: health ok and error rate 0.0% within tolerance 1.0% (baseline 0.2%) for 3s"
    assert counted[0] == 3 and counted[-1] < 3  # counted down once the window was clean
    assert result.seconds == 4.0  # out of bounds at 0 s and 1 s, then clean for three seconds


def test_errors_that_persist_end_without_the_all_clear() -> None:
    clock = Clock()
    result = Soak(ScriptedHealth([True]), ScriptedRates([0.5]), clock, clock.sleep).wait(
        target(), JUDGED, lambda _: None
    )
    assert not result.recovered
    assert result.text == (
        "no clean window in 9s: error rate 50.0% above the tolerance 1.0%; baseline before the bad version 0.2%"
    )


def test_health_going_bad_again_starts_the_window_again() -> None:
    clock = Clock()
    result = Soak(ScriptedHealth([True, False, True]), ScriptedRates([0.0]), clock, clock.sleep).wait(
        target(), JUDGED, lambda _: None
    )
    assert result.recovered and result.seconds == 4.0


def test_prometheus_down_judges_on_health_alone_and_says_so() -> None:
    clock = Clock()
    down = MetricsError("Prometheus at http://127.0.0.1:9 did not answer: ConnectError")
    result = Soak(ScriptedHealth([True]), ScriptedRates([down]), clock, clock.sleep).wait(
        target(), JUDGED, lambda _: None
    )
    assert result.recovered
    assert result.text == (
        "health stayed ok for 3s; errors not measured (Prometheus at http://127.0.0.1:9 did not answer: "
        "ConnectError): judged on health alone"
    )


def test_without_metrics_the_soak_is_off_unless_configured() -> None:
    assert target(soak=None, metrics=False).soak == 0  # type: ignore[arg-type]
    assert target(soak=None).soak == 60
    assert target(soak=None).model_copy(update={"environment": "staging"}).soak == 10


def test_no_data_yet_is_waited_out_not_counted_as_recovered() -> None:
    clock = Clock()
    rates: list[float | Exception | None] = [None, None, None, None, 0.0]
    result = Soak(ScriptedHealth([True]), ScriptedRates(rates), clock, clock.sleep).wait(
        target(), JUDGED, lambda _: None
    )
    assert result.recovered and result.seconds == 4.0  # the window closed only once a rate was read
    assert result.text.startswith("errors recovered: health ok and error rate 0.0%")


def test_never_any_data_is_judged_on_health_alone_and_says_so() -> None:
    clock = Clock()
    result = Soak(ScriptedHealth([True]), ScriptedRates([None]), clock, clock.sleep).wait(
        target(), JUDGED, lambda _: None
    )
    assert result.recovered
    assert result.text == "health stayed ok for 9s; no error-rate data (no traffic?): judged on health alone"
