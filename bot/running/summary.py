"""The run summary: what a finished run reports about itself, as typed fields.

The journal stores it as JSON in the run's row and in its `run.finished` event, and journals
written before this type existed must still read, so the keys and the keys' presence are those
the runner always wrote: `to_dict` gives exactly that shape and `from_dict` reads any of them,
tolerating keys it does not know (a drill's report is a summary of another shape).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class RunSummary:
    """The end of a run in facts. A run that was shut down or interrupted reports only where it
    left the service (`service_state`, `failed_step`); one that ran to an outcome reports all of it."""

    new_version: str | None = None
    previous_version: str | None = None
    healthy: bool | None = None  # None: the run never reached an outcome (interrupted, shut down)
    seconds: float | None = None
    downtime_seconds: float | None = None
    log_file: str | None = None
    health: str | None = None
    brain: str | None = None
    snapshot: str | None = None  # set only when the plan restored the brain from a snapshot
    forensic_copy: str | None = None
    forensic_holds: str | None = None  # set only once the brain was swapped and its copy counted
    rows_rolled_back: int | None = None
    service_state: str | None = None
    failed_step: str | None = None
    after_failure: str | None = None
    journal: str | None = None  # why the outcome is not in the journal yet, when it is not
    recovery: str | None = None  # the soak window: errors recovered, with the numbers
    errors_persist: str | None = None  # healthy, but no clean soak window: not an all-clear
    # The bad window's destructive external calls: a rollback with any is partial, never all clear.
    external_effects: int | None = None
    external_detail: str | None = None

    @property
    def partial(self) -> bool:
        """Healthy, but the outside world keeps what the bad version did to it (sent, deleted)."""
        return bool(self.healthy) and bool(self.external_effects)

    def partial_text(self) -> str:
        return f"partial rollback: {self.external_effects} external effect(s) not rolled back ({self.external_detail})"

    @property
    def all_clear(self) -> bool:
        return bool(self.healthy) and self.errors_persist is None

    def with_journal_problem(self, problem: str) -> RunSummary:
        return replace(self, journal=problem)

    def to_dict(self) -> dict[str, Any]:
        """The summary as the journal has always stored it: a key is present exactly when the
        runner had that fact to give, even when its value is null (`forensic_copy` before a swap)."""
        data: dict[str, Any] = {}
        if self.healthy is not None:
            data.update(
                new_version=self.new_version,
                previous_version=self.previous_version,
                healthy=self.healthy,
                seconds=self.seconds,
                downtime_seconds=self.downtime_seconds,
                log_file=self.log_file,
                health=self.health,
                brain=self.brain,
            )
        if self.snapshot is not None:
            data.update(snapshot=self.snapshot, forensic_copy=self.forensic_copy)
        if self.forensic_holds is not None:
            data.update(forensic_holds=self.forensic_holds, rows_rolled_back=self.rows_rolled_back)
        optional = {
            "service_state": self.service_state,
            "failed_step": self.failed_step,
            "after_failure": self.after_failure,
            "journal": self.journal,
            "recovery": self.recovery,
            "errors_persist": self.errors_persist,
            "external_effects": self.external_effects,
            "external_detail": self.external_detail,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> RunSummary:
        """Any stored summary, old or new; a value of an unexpected type reads as not known."""
        return RunSummary(
            new_version=_text(data, "new_version"),
            previous_version=_text(data, "previous_version"),
            healthy=data["healthy"] if isinstance(data.get("healthy"), bool) else None,
            seconds=_number(data, "seconds"),
            downtime_seconds=_number(data, "downtime_seconds"),
            log_file=_text(data, "log_file"),
            health=_text(data, "health"),
            brain=_text(data, "brain"),
            snapshot=_text(data, "snapshot"),
            forensic_copy=_text(data, "forensic_copy"),
            forensic_holds=_text(data, "forensic_holds"),
            rows_rolled_back=_whole(data, "rows_rolled_back"),
            service_state=_text(data, "service_state"),
            failed_step=_text(data, "failed_step"),
            after_failure=_text(data, "after_failure"),
            journal=_text(data, "journal"),
            recovery=_text(data, "recovery"),
            errors_persist=_text(data, "errors_persist"),
            external_effects=_whole(data, "external_effects"),
            external_detail=_text(data, "external_detail"),
        )


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _whole(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
