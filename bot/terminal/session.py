"""What every terminal command starts and ends with: the core built from `--config` (with the
interrupted runs pointed out before anything else), the exit codes, and the red line of a refusal.

Exit codes are part of the interface: 0 the command did what it was asked; 1 it ran and failed;
2 nothing was done (bad input, refused by preflight, or not confirmed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from rich.text import Text

from bot.core.rollbot import Rollbot
from bot.terminal.render import console

EXIT_OK, EXIT_FAILED, EXIT_NOTHING_DONE = 0, 1, 2


class Invocation(Protocol):
    """A command's context, or the context of the group a sub-command runs in (typer hands
    sub-commands click's plain context as their parent): either carries the config path."""

    @property
    def obj(self) -> Path: ...


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
