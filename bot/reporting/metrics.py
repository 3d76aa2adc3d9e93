"""rollbot's own metrics, in Prometheus' text format, read from the journal at each scrape.

Nothing is counted in process memory: every replica reads the same database, so any of them
answers a scrape with the same figures, and a restart loses none. What an SRE asks of the bot:
how its runs ended, where the time of a run goes, how old the newest brain snapshot is, and
whether postmortem tickets are piling up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from bot.brain.snapshots import list_snapshots
from bot.config import Config
from storage import RUNNER_KINDS, Journal, RunStatus
from storage.tickets import TicketOutbox, TicketStatus

STEP_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class JournalCollector(Collector):
    def __init__(self, config: Config, journal: Journal, tickets: TicketOutbox | None) -> None:
        self._config = config
        self._journal = journal
        self._tickets = tickets

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        yield from self._runs()
        yield self._steps()
        yield self._snapshot_ages()
        if self._tickets is not None:
            pending = GaugeMetricFamily("rollbot_postmortem_tickets_pending", "Postmortem tickets not yet filed")
            pending.add_metric([], self._tickets.count(TicketStatus.PENDING))
            yield pending

    def _runs(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        runs = CounterMetricFamily(
            "rollbot_runs", "Runs recorded in the journal, by outcome", labels=["target", "kind", "status"]
        )
        running = GaugeMetricFamily("rollbot_runs_in_progress", "Rollbacks running now", labels=["target"])
        in_progress: dict[str, int] = dict.fromkeys(self._config.targets, 0)
        for target, kind, status, count in self._journal.run_counts():
            runs.add_metric([target, kind, status], count)
            if status == RunStatus.RUNNING and kind in RUNNER_KINDS:
                in_progress[target] = count
        for target, count in in_progress.items():
            running.add_metric([target], count)
        yield runs
        yield running

    def _steps(self) -> HistogramMetricFamily:
        histogram = HistogramMetricFamily(
            "rollbot_step_duration_seconds", "How long each step of a run took", labels=["target", "step", "status"]
        )
        seconds_by: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for target, step, status, seconds in self._journal.step_durations():
            seconds_by[(target, step, status)].append(seconds)
        for labels, values in sorted(seconds_by.items()):
            buckets = [(str(bound), sum(1 for v in values if v <= bound)) for bound in STEP_BUCKETS]
            buckets.append(("+Inf", len(values)))
            histogram.add_metric(list(labels), buckets, sum(values))
        return histogram

    def _snapshot_ages(self) -> GaugeMetricFamily:
        age = GaugeMetricFamily("rollbot_snapshot_age_seconds", "Age of the newest brain snapshot", labels=["target"])
        now = datetime.now(UTC)
        for target in self._config.targets.values():
            snapshots = list_snapshots(target.brain) if target.brain else []
            if snapshots:
                age.add_metric([target.name], snapshots[0].age_seconds(now))
        return age


def render(config: Config, journal: Journal, tickets: TicketOutbox | None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JournalCollector(config, journal, tickets))
    return generate_latest(registry)
