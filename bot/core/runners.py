"""Runners for the core's use cases, each wired to shutdown and to the schema sightings."""

from __future__ import annotations

import threading

from bot.config import Config, TargetConfig
from bot.core.sightings import saw_healthy
from bot.planning.plan import Systems
from bot.ports import Health
from bot.running.liveness import process_owner
from bot.running.runner import Runner
from storage import Journal


class Runners:
    """Both a confirmation and a resume run a plan; this keeps them built alike."""

    def __init__(
        self, config: Config, journal: Journal, systems: Systems, health: Health, stop_signal: threading.Event
    ) -> None:
        self._config = config
        self._journal = journal
        self._systems = systems
        self._health = health
        self._stop_signal = stop_signal

    @property
    def stopping(self) -> bool:
        """No run starts once shutdown has begun: it would be cut at its first step."""
        return self._stop_signal.is_set()

    def runner(self, actor: str) -> Runner:
        return Runner(
            self._config,
            self._journal,
            self._systems,
            self._health,
            actor,
            process_owner(),
            stopping=self._stop_signal,
            on_healthy=self._saw_healthy,
        )

    def _saw_healthy(self, target: TargetConfig, version: str | None) -> None:
        saw_healthy(self._journal, target, version, "run")
