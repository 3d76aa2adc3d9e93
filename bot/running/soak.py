"""The runbook's "confirm /health ok, errors recovered, post the all-clear": the soak window.

After the first healthy answer the all-clear waits until `/health` has stayed ok and the
Engine's error rate has stayed within the baseline's tolerance (the plan's evidence: the window
before the bad version started, times the configured ratio, never below `min_error_rate`) for
the target's soak window. A health or error reading out of bounds starts the window again; after
three windows without one clean one the run ends "healthy but errors persist", with the numbers.
Without metrics, or with Prometheus not answering, it judges on health alone and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import TargetConfig
from bot.errors import RollbotError
from bot.planning.judgement import Judgement
from bot.ports import Health, Metrics

GIVE_UP_AFTER_WINDOWS = 3
POLL_SECONDS = 1.0
Countdown = Callable[[float], None]  # seconds left in the clean window, for the progress message


@dataclass(frozen=True)
class SoakResult:
    recovered: bool
    text: str  # what was seen, with the numbers: the summary's line
    seconds: float


class Soak:
    def __init__(
        self,
        health: Health,
        metrics: Metrics | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._health = health
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep

    def wait(self, target: TargetConfig, judgement: Judgement | None, countdown: Countdown) -> SoakResult:
        """A window is clean when health stayed ok and, with metrics readable, at least one error
        rate was read in it and none was out of bounds. Prometheus not answering is judged on
        health alone; Prometheus answering "no data" (no traffic yet since the start) is waited
        out, and if it never has data, judged on health alone too, saying so."""
        window = float(target.soak)
        began = self._clock()
        clean_since = began
        tolerance = _tolerance(target, judgement)
        read_in_window = False
        last_rate: float | None = None
        problem: str | None = None
        unread = None if tolerance is not None else _why_not_measured(target)
        while True:
            probe = self._health.wait_until_healthy(target.health_url, min(POLL_SECONDS * 2, 5.0))
            rate, unread_now = self._error_rate(target) if tolerance is not None else (None, unread)
            unread = unread_now
            now = self._clock()
            if not probe.ok:
                problem, clean_since, read_in_window = f"/health went bad again ({probe.describe()})", now, False
            elif rate is not None and tolerance is not None and rate > tolerance:
                problem, clean_since, read_in_window = (
                    f"error rate {rate:.1%} above the tolerance {tolerance:.1%}",
                    now,
                    False,
                )
            elif rate is not None:
                read_in_window, last_rate = True, rate
            settled = read_in_window or unread is not None  # measured, or not measurable: health alone
            if now - clean_since >= window and settled:
                return SoakResult(True, _recovered_text(window, last_rate, tolerance, judgement, unread), now - began)
            if now - began >= window * GIVE_UP_AFTER_WINDOWS:
                if problem is None and probe.ok:  # healthy throughout, but Prometheus never had a rate
                    text = f"health stayed ok for {now - began:.0f}s; no error-rate data (no traffic?): judged on health alone"
                    return SoakResult(True, text, now - began)
                return SoakResult(False, _persist_text(now - began, problem, judgement), now - began)
            countdown(max(window - (now - clean_since), 0.0))
            self._sleep(POLL_SECONDS)

    def _error_rate(self, target: TargetConfig) -> tuple[float | None, str | None]:
        config = target.metrics
        if config is None or config.error_rate_query is None or self._metrics is None:
            return None, _why_not_measured(target)
        try:
            return self._metrics.instant(
                config.prometheus_url, config.error_rate_query, timeout=config.timeout_seconds
            ), None
        except RollbotError as error:
            return None, str(error)


def _tolerance(target: TargetConfig, judgement: Judgement | None) -> float | None:
    config = target.metrics
    if config is None or config.error_rate_query is None:
        return None
    baseline = judgement.error_baseline if judgement else None
    return max(config.ratio * (baseline or 0.0), config.min_error_rate)


def _why_not_measured(target: TargetConfig) -> str:
    if target.metrics is None:
        return "no metrics.prometheus_url"
    return "no metrics.error_rate_query"


def _recovered_text(
    window: float, rate: float | None, tolerance: float | None, judgement: Judgement | None, unread: str | None
) -> str:
    if rate is None or tolerance is None:
        return f"health stayed ok for {window:.0f}s; errors not measured ({unread}): judged on health alone"
    baseline = judgement.error_baseline if judgement else None
    shown = f"{baseline:.1%}" if baseline is not None else "unknown"
    return (
        f"errors recovered: health ok and error rate {rate:.1%} within tolerance {tolerance:.1%} "
        f"(baseline {shown}) for {window:.0f}s"
    )


def _persist_text(seconds: float, problem: str | None, judgement: Judgement | None) -> str:
    baseline = judgement.error_baseline if judgement else None
    shown = f"; baseline before the bad version {baseline:.1%}" if baseline is not None else ""
    return f"no clean window in {seconds:.0f}s: {problem or 'errors persist'}{shown}"
