"""The terminal's runs are also reported where the program says (Slack, wired in bot/program.py),
without bot/terminal importing it: both sinks see every event, a reporter that fails never stops
the run, and what the reporter needs done at exit is handed to the command's context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.terminal.session import ALSO_REPORT, reporting_sinks
from storage import EventKind, EventView, RunStatus, RunView


@dataclass
class Context:
    obj: Path = Path("rollbot.yaml")
    meta: dict[str, Any] = field(default_factory=dict)
    at_exit: list[Callable[[], Any]] = field(default_factory=list)

    def call_on_close(self, f: Callable[[], Any]) -> Callable[[], Any]:
        self.at_exit.append(f)
        return f


def a_run() -> RunView:
    now = datetime.now(UTC)
    return RunView(
        id="20261205-080000-abcdef",
        kind="rollback",
        target="engine",
        environment="test",
        from_version="2.4.0",
        to_version="2.3.1",
        reason="",
        requester="cli:alice",
        status=RunStatus.RUNNING,
        created_at=now,
        started_at=now,
        finished_at=None,
        current_step=None,
        error=None,
        next_action=None,
        owner=None,
        plan={},
        summary={},
    )


def an_event() -> EventView:
    return EventView(1, "20261205-080000-abcdef", datetime.now(UTC), "cli:alice", EventKind.RUN_STARTED, None, {})


def test_both_sinks_see_every_event_and_a_failing_reporter_does_not_stop_the_run() -> None:
    shown: list[EventView] = []
    elsewhere: list[EventView] = []
    ctx = Context()

    def reporter(rollbot: object, at_exit: Callable[[Callable[[], object]], object]) -> Callable[[RunView], Any]:
        at_exit(lambda: "delivered")

        def sink(event: EventView) -> None:
            elsewhere.append(event)
            raise RuntimeError("Slack is down")

        return lambda run: sink

    ctx.meta[ALSO_REPORT] = reporter
    sink = reporting_sinks(ctx, object(), shown.append)(a_run())  # type: ignore[arg-type]
    sink(an_event())
    assert len(shown) == 1 and len(elsewhere) == 1
    assert [f() for f in ctx.at_exit] == ["delivered"]


def test_without_a_reporter_the_terminal_alone_shows_the_run() -> None:
    shown: list[EventView] = []
    sink = reporting_sinks(Context(), object(), shown.append)(a_run())  # type: ignore[arg-type]
    sink(an_event())
    assert len(shown) == 1
