"""What every terminal command starts and ends with: the core built from `--config` (with the
interrupted runs pointed out before anything else), the exit codes, and the red line of a refusal.

Exit codes are part of the interface: 0 the command did what it was asked; 1 it ran and failed;
2 nothing was done (bad input, refused by preflight, or not confirmed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rich.text import Text

from bot.core.rollbot import Rollbot
from bot.running.runner import ProgressSink
from bot.terminal.render import console
from storage import EventView, RunView

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_NOTHING_DONE = 0, 1, 2
# Where the program (bot/program.py) leaves, in click's shared `meta`, how runs are also shown
# elsewhere: the Slack front end when Slack is configured. The terminal never imports it.
ALSO_REPORT = "rollbot.also_report"
SinkFor = Callable[[RunView], ProgressSink | None]
AtExit = Callable[[Callable[[], object]], object]  # the command's context's call_on_close
AlsoReport = Callable[[Rollbot, AtExit], SinkFor | None]


class Invocation(Protocol):
    """A command's context, or the context of the group a sub-command runs in (typer hands
    sub-commands click's plain context as their parent): either carries the config path."""

    @property
    def obj(self) -> Path: ...

    @property
    def meta(self) -> dict[str, Any]: ...

    def call_on_close(self, f: Callable[[], Any]) -> Callable[[], Any]: ...


def reporting_sinks(ctx: Invocation, rollbot: Rollbot, shown: ProgressSink) -> SinkFor:
    """The sink of a run started here: the terminal's own display, plus the program's other
    reporter (Slack's incident channel) when there is one. A reporter that fails never stops
    the run: the journal has it all, and the terminal shows it."""
    also = ctx.meta.get(ALSO_REPORT)
    elsewhere = also(rollbot, ctx.call_on_close) if also is not None else None

    def sink_for(run: RunView) -> ProgressSink:
        other = elsewhere(run) if elsewhere is not None else None
        if other is None:
            return shown

        def both(event: EventView) -> None:
            shown(event)
            try:
                other(event)
            except Exception:
                log.warning("could not report a step of run %s elsewhere", run.id, exc_info=True)

        return both

    return sink_for


def rollbot_for(ctx: Invocation) -> Rollbot:
    """The core for the config the command was given; imported and built only when a command
    runs, so `--help` and usage errors need neither Docker's client nor the journal."""
    from bot.wiring import build_rollbot

    rollbot = build_rollbot(ctx.obj)
    for run, brain in rollbot.recover_interrupted():
        console(stderr=True).print(
            Text(
                f"run {run.id} of {run.target} ({run.from_version} → {run.to_version}) was interrupted "
                f"during step '{run.current_step}'"
                + (f"; {brain}" if brain else "")
                + f"; go on with `rollbot resume {run.id}` or close it with `rollbot abort {run.id}`",
                style="yellow",
            ),
            highlight=False,
        )
    return rollbot


def fail_line(text: str) -> None:
    """A refusal or failure: one red line on stderr, never markup from the text it quotes."""
    console(stderr=True).print(Text(text, style="red"), highlight=False, soft_wrap=True)
