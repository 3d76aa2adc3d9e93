"""The runbook's "When to roll back", as a verdict from measured evidence. Pure: no I/O.

Roll back when `/health` is not ok, when the error rate or latency is sharply worse than the
baseline (the window before the running version started) and not improving, or when the
regression eval fails. Don't for one outlier (a spike the last minutes' median does not share),
for errors that are a bad request or two rather than the service, or for a change that is
already improving. "If you're unsure, roll back": a criterion that was configured but could
not be read makes the verdict unsure, and an unsure verdict's words say to roll back.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from bot.config import MetricsConfig
from bot.ports import EvalResult

IMPROVING_FACTOR = 0.75  # the trend's last third averages below this share of its first third


class Call(StrEnum):
    ROLL_BACK = "roll back"
    DONT = "don't roll back"
    UNSURE = "unsure"


@dataclass(frozen=True)
class MetricReading:
    """One metric now, in its baseline, and over the last minutes (the trend), as read."""

    name: str  # "error rate" or "p95 latency"
    now: float | None
    baseline: float | None
    trend: tuple[float, ...] = ()

    def show(self, value: float | None) -> str:
        if value is None:
            return "no data"
        return f"{value:.1%}" if self.name == "error rate" else f"{value * 1000:.0f} ms"

    @property
    def typical(self) -> float | None:
        """The median over the trend window: what one spike does not move."""
        return statistics.median(self.trend) if self.trend else None

    @property
    def improving(self) -> bool:
        if len(self.trend) < 3:
            return False
        third = max(len(self.trend) // 3, 1)
        first, last = statistics.fmean(self.trend[:third]), statistics.fmean(self.trend[-third:])
        return first > 0 and last < first * IMPROVING_FACTOR

    def trend_words(self) -> str:
        if len(self.trend) < 2:
            return "no trend yet"
        third = max(len(self.trend) // 3, 1)
        first, last = statistics.fmean(self.trend[:third]), statistics.fmean(self.trend[-third:])
        way = "improving" if self.improving else ("rising" if last > first * 1.1 else "flat")
        return f"{way} ({self.show(first)} → {self.show(last)})"


@dataclass(frozen=True)
class Evidence:
    """Everything a verdict is made from; each front end shows it as `evidence_lines`."""

    target: str
    running_version: str | None
    running_since: datetime | None
    previous_good: str | None
    health_ok: bool
    health: str  # the answer, in words
    failing_since: datetime | None = None  # the earlier known start of the failure
    failing_source: str | None = None  # which told it: Docker's health log or rollbot's probes
    last_ok_probe: datetime | None = None  # rollbot's newest ok probe: the failure began after it
    error_rate: MetricReading | None = None
    latency: MetricReading | None = None
    failed_requests: float | None = None  # since the running version started
    regression_eval: EvalResult | None = None
    not_measured: tuple[str, ...] = ()  # criteria not configured, with why
    unreadable: tuple[str, ...] = ()  # criteria configured but not read, with why
    checked_at: datetime | None = None


@dataclass(frozen=True)
class Judgement:
    """The verdict, its reasons and its evidence: shown by `check`, by every plan, and the
    postmortem's Detection section. Journaled with the plan, so it reads back from a dict."""

    call: Call
    reasons: tuple[str, ...]
    evidence: tuple[str, ...]
    previous_good: str | None = None
    running_since: datetime | None = None
    error_baseline: float | None = None  # the all-clear's tolerance is measured against these
    latency_baseline: float | None = None
    not_measured: tuple[str, ...] = field(default=())

    @property
    def headline(self) -> str:
        why = "; ".join(self.reasons)
        if self.call is Call.ROLL_BACK:
            to = f" to {self.previous_good}" if self.previous_good else ""
            return f"Roll back{to}: {why}"
        if self.call is Call.UNSURE:
            return f"Cannot tell ({why}). The runbook says: if you're unsure, roll back"
        return f"Don't roll back: {why}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Judgement:
        since = data.get("running_since")
        return cls(
            call=Call(data["call"]),
            reasons=tuple(data.get("reasons") or ()),
            evidence=tuple(data.get("evidence") or ()),
            previous_good=data.get("previous_good"),
            running_since=datetime.fromisoformat(since) if isinstance(since, str) else None,
            error_baseline=data.get("error_baseline"),
            latency_baseline=data.get("latency_baseline"),
            not_measured=tuple(data.get("not_measured") or ()),
        )


def judge(evidence: Evidence, metrics: MetricsConfig | None) -> Judgement:
    """The runbook's verdict. Reasons to roll back win; then anything unread makes it unsure."""
    ratio = metrics.ratio if metrics else 2.0
    roll: list[str] = []
    hold: list[str] = []
    if not evidence.health_ok:
        day = evidence.checked_at.date() if evidence.checked_at else None
        since = f" since {_moment(evidence.failing_since, day)} UTC" if evidence.failing_since else ""
        roll.append(f"/health is not ok{since} ({evidence.health})")
    if evidence.regression_eval is not None and not evidence.regression_eval.passed:
        roll.append(f"the regression eval fails: {evidence.regression_eval.detail}")
    if evidence.error_rate is not None and metrics is not None:
        _weigh(
            evidence.error_rate,
            max(ratio * (evidence.error_rate.baseline or 0), metrics.min_error_rate),
            ratio,
            evidence,
            metrics,
            roll,
            hold,
        )
    if evidence.latency is not None and evidence.latency.baseline:
        _weigh(evidence.latency, ratio * evidence.latency.baseline, ratio, evidence, metrics, roll, hold)
    if roll:
        call, reasons = Call.ROLL_BACK, roll
    elif evidence.unreadable:
        call, reasons = Call.UNSURE, [f"could not read {what}" for what in evidence.unreadable]
    else:
        call = Call.DONT
        reasons = hold or [
            "/health is ok"
            + ("" if evidence.error_rate or evidence.latency else " (judged on health alone)")
            + (
                "; error rate and latency are within tolerance of the baseline"
                if evidence.error_rate or evidence.latency
                else ""
            )
        ]
    return Judgement(
        call=call,
        reasons=tuple(reasons),
        evidence=evidence_lines(evidence, ratio),
        previous_good=evidence.previous_good,
        running_since=evidence.running_since,
        error_baseline=evidence.error_rate.baseline if evidence.error_rate else None,
        latency_baseline=evidence.latency.baseline if evidence.latency else None,
        not_measured=evidence.not_measured + evidence.unreadable,
    )


def _weigh(
    reading: MetricReading,
    threshold: float,
    ratio: float,
    evidence: Evidence,
    metrics: MetricsConfig | None,
    roll: list[str],
    hold: list[str],
) -> None:
    """One metric against its threshold: sharp and sustained and not improving rolls back."""
    if reading.now is None or reading.now < threshold:
        return
    compared = f"{reading.name} {reading.show(reading.now)} vs {reading.show(reading.baseline)} before {evidence.running_version}"
    few = metrics.isolated_errors if metrics else 0
    if reading.name == "error rate" and evidence.failed_requests is not None and evidence.failed_requests <= few:
        hold.append(
            f"{compared}, but only {evidence.failed_requests:.0f} failed request(s) since it started: "
            "a bad request, not the service (the runbook: don't roll back for one bad request)"
        )
    elif reading.typical is not None and reading.typical < threshold:
        hold.append(
            f"{compared} is one outlier: its median over the last minutes is {reading.show(reading.typical)} "
            "(the runbook: don't roll back for one outlier metric)"
        )
    elif reading.improving:
        hold.append(f"{compared} is sharply worse but {reading.trend_words()}: watch it")
    else:
        roll.append(f"{compared} (≥ {ratio:g}× the baseline), {reading.trend_words()}")


def evidence_lines(evidence: Evidence, ratio: float = 2.0) -> tuple[str, ...]:
    """The evidence block, one fact per line, the same in `check`, the plan and the postmortem."""
    lines = []
    running = evidence.running_version or "no running version"
    since = f", up since {evidence.running_since:%Y-%m-%d %H:%M:%S} UTC" if evidence.running_since else ""
    lines.append(f"running: {running}{since}")
    lines.append(f"health: {'ok' if evidence.health_ok else 'NOT ok'}{_failing_words(evidence)} — {evidence.health}")
    for reading in (evidence.error_rate, evidence.latency):
        if reading is not None:
            lines.append(
                f"{reading.name}: {reading.show(reading.now)} now, {reading.show(reading.baseline)} baseline "
                f"(sharp at {ratio:g}×), trend {reading.trend_words()}"
            )
    if evidence.failed_requests is not None:
        lines.append(f"failed requests since {running} started: {evidence.failed_requests:.0f}")
    if evidence.regression_eval is not None:
        verdict = "passes" if evidence.regression_eval.passed else "FAILS"
        lines.append(f"regression eval: {verdict} — {evidence.regression_eval.detail}")
    lines += [f"not measured: {what}" for what in evidence.not_measured]
    lines += [f"could not read: {what}" for what in evidence.unreadable]
    lines.append(f"previous good version: {evidence.previous_good or 'none found'}")
    return tuple(lines)


def _failing_words(evidence: Evidence) -> str:
    """ ", not ok since 12:03:10 UTC (Docker's health log; rollbot's last ok probe 11:58:00 UTC)"."""
    if evidence.health_ok:
        return ""
    day = evidence.checked_at.date() if evidence.checked_at else None
    last_ok = f"rollbot's last ok probe {_moment(evidence.last_ok_probe, day)} UTC" if evidence.last_ok_probe else None
    if evidence.failing_since is None:
        return f" ({last_ok})" if last_ok else ""
    told = "; ".join(part for part in (evidence.failing_source, last_ok) if part)
    return f", not ok since {_moment(evidence.failing_since, day)} UTC" + (f" ({told})" if told else "")


def _moment(when: datetime, day: date | None) -> str:
    """The time of day, with the date when it is not the day of the check."""
    return f"{when:%H:%M:%S}" if day is None or when.date() == day else f"{when:%Y-%m-%d %H:%M:%S}"


def series_values(series: Sequence[tuple[datetime, float]]) -> tuple[float, ...]:
    return tuple(value for _, value in series)
