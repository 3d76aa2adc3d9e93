"""Every /health probe rollbot makes, remembered per target: since when it has not been ok.

The runbook's first criterion is "/health non-ok and not fixable in minutes", so `check` must
say since when. Docker's health log knows only for images or compose files with a
`healthcheck:`; rollbot probes /health anyway — status and App Home, every check and plan, a
run's health check and soak window, a snapshot — and each of those probes goes through
`RecordingHealth`, which journals its answer for the targets with that URL (bounded: see
storage/health_probes.py). Recording is best effort: a journal that cannot write never turns a
probe's answer into a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.config import Config
from bot.ports import Health, HealthResult
from storage import Journal

log = logging.getLogger(__name__)


class RecordingHealth:
    """A `Health` that journals what it found, naming what probed (`source`: status, check, …)."""

    def __init__(
        self,
        health: Health,
        journal: Journal,
        config: Config,
        source: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._health = health
        self._journal = journal
        self._config = config
        self._source = source
        self._clock = clock

    def wait_until_healthy(self, url: str, timeout: float) -> HealthResult:
        result = self._health.wait_until_healthy(url, timeout)
        at = self._clock()
        began = at - timedelta(seconds=max(result.seconds, 0.0))
        for target in self._config.targets.values():
            if target.health_url != url:
                continue
            try:
                self._journal.probed(target.name, result.ok, result.describe(), self._source, at, began)
            except Exception as error:  # noqa: BLE001 - a missing record only makes "since" less precise
                log.warning("could not record the /health probe of %s: %s", target.name, error)
        return result


def recorded(health: Health, journal: Journal, config: Config) -> Callable[[str], Health]:
    """`recorded(...)(source)`: the health probe each part of the core uses, recording as `source`."""

    def probe_as(source: str) -> Health:
        return RecordingHealth(health, journal, config, source)

    return probe_as
