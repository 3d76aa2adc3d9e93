"""Which run a click on a button acts on, or why it acts on none.

A button carries a run id, and a front end remembers where it showed each run; a click that
names an unknown run, or that comes from a message other than the one showing the run, is
refused before anything looks at what the click asks.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.exc import NoResultFound

from bot.config import Config, TargetConfig
from bot.core.outcomes import Outcome
from storage import Journal, RunView


def clicked_run(
    journal: Journal, config: Config, run_id: str, remembered_as: str, what: str, seen_on: Mapping[str, str] | None
) -> tuple[RunView, TargetConfig] | Outcome:
    """The run a click names, and its target; or the refusal when the run is unknown, is not
    `what` the clicked message shows, or its target is no longer configured."""
    try:
        run = journal.run(run_id)
    except NoResultFound:
        return Outcome(refusal=f"run {_quoted(run_id)} is not known to rollbot; nothing was done")
    if _seen_elsewhere(run, remembered_as, seen_on):
        return Outcome(refusal=f"run {run.id} ({run.target} → {run.to_version}) is not {what}; nothing was done")
    target = config.target(run.target)
    if target is None:
        return Outcome(refusal=f"target {run.target} is no longer configured")
    return run, target


def _seen_elsewhere(run: RunView, remembered_as: str, seen_on: Mapping[str, str] | None) -> bool:
    """A front end says where a person acted (`seen_on`) and remembered where it showed the run
    (`run.context[remembered_as]`); True when both are known and differ."""
    shown_on = run.context.get(remembered_as)
    return seen_on is not None and shown_on is not None and dict(seen_on) != shown_on


def _quoted(text: str, limit: int = 40) -> str:
    """Text from a request, shown briefly and unambiguously (repr) in a refusal."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
