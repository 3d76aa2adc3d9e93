"""The postmortem tells what happened: a run that ended healthy with its errors still high is
no all-clear in any section, and says so with the numbers the soak window saw."""

from __future__ import annotations

from bot.core.rollbot import Rollbot
from bot.planning.plan import RollbackRequest
from bot.reporting.postmortem import build, to_jira_wiki, to_markdown
from storage import Journal, RunStatus, RunView, StepStatus

from .fakes import FakeHealth, World

PERSISTING = "no clean window in 30s: error rate 40.0% above the tolerance 1.0%; baseline before the bad version 0.5%"
RECOVERED = "errors recovered: health ok and error rate 0.2% within tolerance 1.0% (baseline 0.5%) for 10s"


def journaled_run(world: World, journal: Journal, summary: dict[str, object]) -> RunView:
    """A run journaled the way the runner writes one: started, each step done, finished with `summary`."""
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    planned = rollbot.plan(RollbackRequest("engine", "2.3.1", "U0REQUEST", "5xx since deploy"))
    journal.start(planned.run.id, "U0REQUEST", owner="test")
    for step in planned.run.steps:
        journal.step_started(planned.run.id, step.position, "rollbot")
        journal.step_finished(planned.run.id, step.position, "rollbot", StepStatus.SUCCEEDED)
    journal.finish(planned.run.id, "rollbot", RunStatus.SUCCEEDED, summary=summary)
    return journal.run(planned.run.id)


def test_errors_that_persist_after_health_returns_are_no_all_clear_in_the_postmortem(
    world: World, journal: Journal
) -> None:
    run = journaled_run(world, journal, {"healthy": True, "seconds": 40.0, "errors_persist": PERSISTING})

    postmortem = build(run, [])
    document = to_markdown(postmortem)

    assert "all-clear: healthy" not in document
    *_, (_, last) = postmortem.timeline
    assert last == f"healthy but errors persist, not an all-clear: {PERSISTING}"
    assert f"Outcome: engine is healthy on 2.3.1 but errors persist, not an all-clear ({PERSISTING})" in document
    assert f"- After the rollback: healthy but errors persist, not an all-clear: {PERSISTING}" in document
    assert any("Find why errors persist on 2.3.1 after the rollback" in item for item in postmortem.action_items)
    assert "error rate 40.0% above the tolerance 1.0%" in to_jira_wiki(postmortem)


def test_a_recovered_run_ends_its_timeline_in_the_all_clear(world: World, journal: Journal) -> None:
    run = journaled_run(world, journal, {"healthy": True, "seconds": 20.0, "recovery": RECOVERED})

    postmortem = build(run, [])

    *_, (_, last) = postmortem.timeline
    assert last == "all-clear: healthy"
    assert f"After the rollback: {RECOVERED}" in postmortem.detection
    assert "errors persist" not in to_markdown(postmortem)
