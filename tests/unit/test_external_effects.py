"""What no rollback undoes: the bad window's destructive calls, read from the brain's call table,
and how a run with any of them ends — a partial rollback, in the summary line and in history."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.brain.external import ExternalCall, ExternalEffects, destructive_calls
from bot.config import ExternalCallsConfig
from bot.running.summary import RunSummary
from bot.text import external_lines

CALLS = ExternalCallsConfig(
    table="tool_calls", tool="tool", at="created_at", outcome="outcome", destructive=("send_email", "delete_resource")
)
LIVE_SINCE = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def brain_with_calls(path: Path, calls: list[tuple[str, object, str]]) -> Path:
    with closing(sqlite3.connect(path)) as brain:
        brain.execute("CREATE TABLE tool_calls (id INTEGER PRIMARY KEY, created_at, tool TEXT, outcome TEXT)")
        brain.executemany("INSERT INTO tool_calls (created_at, tool, outcome) VALUES (?, ?, ?)", calls)
        brain.commit()
    return path


def test_only_destructive_calls_of_the_bad_window_are_listed(tmp_path: Path) -> None:
    brain = brain_with_calls(
        tmp_path / "brain.sqlite",
        [
            ("2026-12-05T09:59:00+00:00", "send_email", "sent"),  # before the bad version went live
            ("2026-12-05T10:00:01+00:00", "search", "ok"),
            ("2026-12-05T10:00:02+00:00", "send_email", "sent"),
            ("2026-12-05T11:00:02+01:00", "delete_resource", "deleted"),  # 10:00:02 UTC, another offset
            ("2026-12-05T10:00:03Z", "send_email", "bounced"),
        ],
    )
    effects = destructive_calls(brain, CALLS, LIVE_SINCE)
    assert effects.count == 3 and effects.problem is None
    assert effects.calls == (
        ExternalCall("send_email", "2026-12-05T10:00:02+00:00", "sent"),
        ExternalCall("delete_resource", "2026-12-05T10:00:02+00:00", "deleted"),
        ExternalCall("send_email", "2026-12-05T10:00:03+00:00", "bounced"),
    )
    assert effects.headline() == (
        "3 external effect(s) not rolled back (send_email ×2, delete_resource ×1) since 2026-12-05T10:00:00+00:00"
    )


def test_epoch_times_and_unreadable_times_count(tmp_path: Path) -> None:
    """A time rollbot cannot read is listed: better a call too many than one hidden."""
    brain = brain_with_calls(
        tmp_path / "brain.sqlite",
        [
            (LIVE_SINCE.timestamp() - 60, "send_email", "sent"),
            (LIVE_SINCE.timestamp() + 5, "send_email", "sent"),
            ("yesterday", "delete_resource", None),
        ],
    )
    effects = destructive_calls(brain, CALLS, LIVE_SINCE)
    assert [call.describe() for call in effects.calls] == [
        "2026-12-05T10:00:05+00:00 send_email (sent)",
        "yesterday delete_resource",
    ]


def test_no_known_start_lists_every_recorded_call(tmp_path: Path) -> None:
    brain = brain_with_calls(tmp_path / "brain.sqlite", [("2026-01-01T00:00:00+00:00", "send_email", "sent")])
    effects = destructive_calls(brain, CALLS, None)
    assert effects.count == 1 and effects.headline().endswith("since the first record")


def test_a_missing_table_is_a_problem_said_not_a_crash(tmp_path: Path) -> None:
    brain = tmp_path / "brain.sqlite"
    with closing(sqlite3.connect(brain)) as created:
        created.execute("CREATE TABLE episodes (id INTEGER PRIMARY KEY)")
    effects = destructive_calls(brain, CALLS, LIVE_SINCE)
    assert effects.count == 0 and effects.problem is not None and "no such table: tool_calls" in effects.problem
    assert effects.headline().startswith("external effects could not be read from tool_calls: ")


def test_nothing_destructive_says_so(tmp_path: Path) -> None:
    brain = brain_with_calls(tmp_path / "brain.sqlite", [("2026-12-05T10:30:00+00:00", "search", "ok")])
    effects = destructive_calls(brain, CALLS, LIVE_SINCE)
    assert (effects.count, effects.calls) == (0, ())
    assert external_lines(effects) == ["no destructive external calls in tool_calls since 2026-12-05T10:00:00+00:00"]


def test_the_plan_shows_ten_calls_and_says_how_many_more() -> None:
    calls = tuple(ExternalCall("send_email", f"2026-12-05T10:00:{n:02d}+00:00", "sent") for n in range(12))
    effects = ExternalEffects("tool_calls", "2026-12-05T10:00:00+00:00", 12, calls)
    lines = external_lines(effects)
    assert len(lines) == 12 and lines[-1] == "… and 2 more (the postmortem lists 12)"
    assert ExternalEffects.from_dict({**vars(effects), "calls": [vars(c) for c in calls]}) == effects


def test_a_healthy_run_with_external_effects_is_partial_and_reads_back() -> None:
    healthy = RunSummary(new_version="2.3.1", previous_version="2.4.0", healthy=True, brain="not restored")
    partial = replace(healthy, external_effects=2, external_detail="send_email ×2 since 2026-12-05T10:00:00+00:00")
    assert not healthy.partial and partial.partial and partial.all_clear
    assert partial.partial_text() == (
        "partial rollback: 2 external effect(s) not rolled back (send_email ×2 since 2026-12-05T10:00:00+00:00)"
    )
    assert RunSummary.from_dict(partial.to_dict()) == partial
    assert "external_effects" not in healthy.to_dict(), "summaries without them keep their old shape"
    assert not replace(partial, healthy=False).partial, "a failed run is failed, not partial"
