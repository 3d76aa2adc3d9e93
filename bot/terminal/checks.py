"""`rollbot check TARGET`: the runbook's "When to roll back", measured, with the evidence.

The exit code is the verdict, for scripts and alerts: 0 no rollback needed, 3 rollback
recommended, 2 cannot tell (something the verdict needs could not be read; the runbook's
"if you're unsure, roll back" is printed with it).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from bot.planning.judgement import Call, Judgement
from bot.terminal.render import console
from bot.terminal.session import EXIT_NOTHING_DONE, EXIT_OK, rollbot_for

EXIT_ROLL_BACK = 3
EXIT_FOR = {Call.DONT: EXIT_OK, Call.ROLL_BACK: EXIT_ROLL_BACK, Call.UNSURE: EXIT_NOTHING_DONE}
STYLE_FOR = {Call.DONT: "green", Call.ROLL_BACK: "red", Call.UNSURE: "yellow"}


def register(app: typer.Typer) -> None:
    app.command()(check)


def check(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="target name from the config, e.g. engine")],
) -> None:
    """Should TARGET be rolled back? Exit 0 no, 3 yes, 2 cannot tell."""
    judgement = rollbot_for(ctx).check(target)
    print_judgement(judgement)
    if judgement.call is Call.ROLL_BACK:
        version = judgement.previous_good or "VERSION"
        console().print(Text(f"to roll back: rollbot rollback {target} {version}"), highlight=False)
    raise typer.Exit(EXIT_FOR[judgement.call])


def print_judgement(judgement: Judgement) -> None:
    out = console()
    out.print(Text(judgement.headline, style=f"bold {STYLE_FOR[judgement.call]}"), highlight=False, soft_wrap=True)
    for line in judgement.evidence:
        out.print(Text(f"  {line}"), highlight=False, soft_wrap=True)
