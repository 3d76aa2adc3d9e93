"""The run summary reads every shape the journal holds and writes it back with the same keys."""

from __future__ import annotations

from typing import Any

import pytest

from bot.running.summary import RunSummary

CORE: dict[str, Any] = {
    "new_version": "2.3.1",
    "previous_version": "2.4.0",
    "healthy": True,
    "seconds": 12.5,
    "downtime_seconds": 3.25,
    "log_file": "/evidence/r/engine-2.4.0.log",
    "health": "ok after 2 attempts",
    "brain": "not restored",
}

STORED: list[dict[str, Any]] = [
    CORE,
    {
        **CORE,
        "brain": "restored from brain-pre-upgrade.db",
        "snapshot": "/snaps/brain-pre-upgrade.db",
        "forensic_copy": "/data/forensic/brain.sqlite",
        "forensic_holds": "episodes: 2 row(s)",
        "rows_rolled_back": 2,
    },
    {
        **CORE,
        "healthy": False,
        "downtime_seconds": None,
        "health": None,
        "snapshot": "/snaps/s.db",
        "forensic_copy": None,
        "service_state": "nothing was changed",
        "failed_step": "pull",
    },
    {
        **CORE,
        "healthy": False,
        "service_state": "engine is running 2.4.0 again",
        "failed_step": "start",
        "after_failure": "started 2.4.0 again",
        "journal": "the journal could not be written (locked)",
    },
    {
        **CORE,
        "snapshot": "/snaps/s.db",
        "forensic_copy": "/f/brain.sqlite",
        "forensic_holds": "could not be counted: gone",
        "rows_rolled_back": None,
    },
    {"service_state": "the compose file names 2.3.1 and engine is stopped", "failed_step": "stop"},
    {},
]


@pytest.mark.parametrize("stored", STORED)
def test_a_stored_summary_reads_back_and_writes_the_same_keys_in_the_same_order(stored: dict[str, Any]) -> None:
    written = RunSummary.from_dict(stored).to_dict()
    assert written == stored
    assert list(written) == list(stored)


def test_a_drill_report_reads_as_a_summary_with_nothing_known() -> None:
    drill = {"phases": {"snapshot": 1.0}, "total_seconds": 9.0, "rollback_seconds": 4.0, "downtime_seconds": 2.0}
    summary = RunSummary.from_dict(drill)
    assert summary.seconds is None and summary.downtime_seconds == 2.0 and summary.healthy is None


def test_values_of_an_unexpected_type_read_as_not_known() -> None:
    summary = RunSummary.from_dict({"seconds": "12", "healthy": "yes", "rows_rolled_back": True})
    assert (summary.seconds, summary.healthy, summary.rows_rolled_back) == (None, None, None)
