"""The journal database failing at each step boundary (issue 12, observation 4).

The journal is a real SQLite file whose writes really fail: `PRAGMA query_only` is switched on
for every transaction once the fault is armed, so SQLite itself answers "attempt to write a
readonly database", as a full or read-only disk would refuse. The Engine is the fake host of
tests/unit/fakes.py. What must hold: the Engine is never left stopped because of the journal,
the last message says where the service is, and what the journal could not take is written
once it can.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from bot.running.runner import Runner, journal_retry
from bot.text import summary_line
from storage import EventView, Journal, RunStatus, StepStatus, connect

from .fakes import COMPOSE_TEXT, REPO, FakeHealth, World
from .test_runner import ACTOR, ALL_STEPS, Ticks, planned

BEFORE_STOP = ["capture_logs", "set_image_tag", "pull"]


@dataclass
class Fault:
    """While armed, every transaction of the journal is read-only; `heal_after` failed writes
    disarm it (None: it stays broken)."""

    armed: bool = False
    heal_after: int | None = None
    failures: int = 0


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[tuple[Engine, Fault]]:
    engine = connect(f"sqlite:///{tmp_path}/journal.db")
    fault = Fault()

    @event.listens_for(engine, "begin")
    def read_only_when_armed(connection: Any) -> None:
        connection.exec_driver_sql(f"PRAGMA query_only = {1 if fault.armed else 0}")

    @event.listens_for(engine, "handle_error")
    def count(context: Any) -> None:
        if fault.armed and "readonly" in str(context.original_exception):
            fault.failures += 1
            if fault.heal_after is not None and fault.failures >= fault.heal_after:
                fault.armed = False

    yield engine, fault
    engine.dispose()


class Recorder:
    """The progress sink: keeps every event, and arms the fault at the chosen boundary."""

    def __init__(self, fault: Fault, kind: str, step: str) -> None:
        self.events: list[EventView] = []
        self._fault, self._kind, self._step = fault, kind, step

    def __call__(self, event: EventView) -> None:
        self.events.append(event)
        if event.kind == self._kind and event.details.get("step") == self._step:
            self._fault.armed = True


def run_with_fault(
    world: World, engine: Engine, fault: Fault, kind: str, step: str, health: FakeHealth | None = None
) -> tuple[Any, Recorder, str]:
    journal = Journal(engine)
    run_id, plan = planned(world, journal)
    sink = Recorder(fault, kind, step)
    runner = Runner(
        world.config,
        journal,
        world.systems(),
        health or FakeHealth(world.compose, {"2.3.1"}),
        ACTOR,
        owner="testhost:1",
        clock=Ticks(),
        retry=journal_retry(attempts=3, first_wait=0, max_wait=0),
    )
    return runner.execute(run_id, plan, sink), sink, run_id


@pytest.mark.parametrize("kind", ["step.started", "step.finished"], ids=["during", "after"])
@pytest.mark.parametrize("step", ALL_STEPS)
def test_a_journal_that_stays_broken_never_strands_the_engine(
    world: World, faulty: tuple[Engine, Fault], step: str, kind: str
) -> None:
    """The journal breaks at each boundary and stays broken. Before the drain-stop the run ends
    with its edit undone and the Engine untouched; from the stop on it finishes `up` and the
    health check. Either way no exception escapes and the last message says where the service is."""
    engine, fault = faulty
    view, sink, run_id = run_with_fault(world, engine, fault, kind, step)

    stop_began = ALL_STEPS.index(step) >= ALL_STEPS.index("stop")  # the fault came once the stop was journaled
    last = sink.events[-1]
    assert (last.kind, last.outcome) == ("run.finished", view.status)
    line = summary_line(view)
    assert "the journal could not be written (attempt to write a readonly database)" in line
    if stop_began:
        assert view.status is RunStatus.SUCCEEDED
        assert world.compose.running_image() == f"{REPO}:2.3.1"
        assert line.startswith("engine is healthy on 2.3.1")
    else:
        assert view.status is RunStatus.FAILED
        assert world.compose.running_image() == f"{REPO}:2.4.0"
        assert world.compose_file.read_text() == COMPOSE_TEXT
        assert "nothing was changed: engine still runs 2.4.0" in line
    fault.armed = False
    journaled = Journal(engine).run(run_id)
    assert journaled.status is RunStatus.RUNNING, "the journal claims nothing it was not told"


def test_a_journal_that_heals_after_the_engine_is_up_gets_the_whole_story(
    world: World, faulty: tuple[Engine, Fault]
) -> None:
    """The journal breaks at the drain-stop and comes back while /health is checked: the writes
    kept meanwhile are made afterwards, so the journal ends as if it had never failed."""
    engine, fault = faulty

    class HealsTheJournal(FakeHealth):
        def wait_until_healthy(self, url: str, timeout: float) -> Any:
            fault.armed = False
            return super().wait_until_healthy(url, timeout)

    view, _, run_id = run_with_fault(
        world, engine, fault, "step.started", "stop", HealsTheJournal(world.compose, {"2.3.1"})
    )

    assert fault.failures > 0
    assert view.status is RunStatus.SUCCEEDED and "journal" not in view.summary
    run = Journal(engine).run(run_id)
    assert run.status is RunStatus.SUCCEEDED
    assert [s.status for s in run.steps] == [StepStatus.SUCCEEDED] * len(ALL_STEPS)
    assert world.compose.running_image() == f"{REPO}:2.3.1"
    started = [e.details.get("step") for e in Journal(engine).run(run_id).events if e.kind == "step.started"]
    assert started == ALL_STEPS, "each write kept for later names its own step, not the last one"


def test_a_write_that_fails_twice_is_retried_at_the_stop_boundary(world: World, faulty: tuple[Engine, Fault]) -> None:
    engine, fault = faulty
    fault.heal_after = 2

    view, _, run_id = run_with_fault(world, engine, fault, "step.started", "stop")

    assert fault.failures == 2
    assert view.status is RunStatus.SUCCEEDED and "journal" not in view.summary
    assert Journal(engine).run(run_id).status is RunStatus.SUCCEEDED


def test_the_channel_hears_where_the_service_is_when_the_journal_cannot_take_the_outcome(
    world: World, faulty: tuple[Engine, Fault]
) -> None:
    """The journal breaks after the drain-stop and stays broken (reads still work, it says
    `running`): the Slack all-clear is built from the end event, not from the stale journal."""
    from slack_sdk import WebClient

    from handlers.outbox import Outbox
    from handlers.progress import SlackProgress
    from tests.slackapi.fake_slack import FakeSlack

    engine, fault = faulty
    journal = Journal(engine)
    run_id, plan = planned(world, journal)
    with FakeSlack() as slack:
        outbox = Outbox(min_interval=0)
        slack_sink = SlackProgress(
            WebClient(token="xoxb-test", base_url=slack.url), outbox, journal.run, journal.run(run_id), "C0INCIDENT"
        )
        arm = Recorder(fault, "step.finished", "stop")

        def sink(event: EventView) -> None:
            arm(event)
            slack_sink(event)

        runner = Runner(
            world.config,
            journal,
            world.systems(),
            FakeHealth(world.compose, {"2.3.1"}),
            ACTOR,
            owner="testhost:1",
            clock=Ticks(),
            retry=journal_retry(attempts=2, first_wait=0, max_wait=0),
        )
        view = runner.execute(run_id, plan, sink)
        assert outbox.drain(timeout=20)
        outbox.stop()
        final = [m["text"] for m in slack.messages("C0INCIDENT") if "All clear" in str(m) or "Rollback" in m["text"]]
    assert view.status is RunStatus.SUCCEEDED
    assert any("engine is healthy on 2.3.1" in text and "this outcome is not in it yet" in text for text in final), (
        final
    )
    fault.armed = False
    assert Journal(engine).run(run_id).status is RunStatus.RUNNING
