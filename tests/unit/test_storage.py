"""The journal on real databases: the rows and the event log tell the same story, in order.

Every test that is not about SQLite's file runs twice, on a fresh SQLite file and on a fresh
PostgreSQL database (the `new_database` fixture), since replicas share PostgreSQL and one bot
uses SQLite: the journal must behave the same on both."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoResultFound, StatementError
from sqlalchemy.orm import Session

from storage import Journal, LostRun, NotStartable, RunStatus, StepStatus, connect
from storage.models import RunRow
from storage.repository import NewRun
from tests.databases import fresh_postgres_database

STEPS = [("capture_logs", "save the logs"), ("set_image_tag", "switch the tag"), ("pull", "docker compose pull engine")]


def sqlite_url(tmp_path: Path, name: str = "j.db") -> str:
    return f"sqlite:///{tmp_path}/{name}"


class TickingClock:
    """Every reading is one second after the last: orderings and run ids become deterministic."""

    def __init__(self, start: datetime = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = connect(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def journal(engine: Engine) -> Journal:
    return Journal(engine, clock=TickingClock())


def new_run(target: str = "engine", version: str = "2.3.1", steps: list[tuple[str, str]] | None = None) -> NewRun:
    return NewRun(
        target=target,
        to_version=version,
        requester="cli:alice",
        steps=STEPS if steps is None else steps,
        environment="production",
        from_version="2.4.0",
        reason="5xx after deploy",
        plan={"checks": []},
    )


def assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


# --- plans ---------------------------------------------------------------------------------------


def test_record_plan_planned(journal: Journal) -> None:
    """An approvable plan is journaled as planned, with its steps pending."""
    run = journal.record_plan(new_run(), actor="cli:alice")
    assert run.status is RunStatus.PLANNED
    assert (run.target, run.from_version, run.to_version, run.requester) == ("engine", "2.4.0", "2.3.1", "cli:alice")
    assert run.reason == "5xx after deploy"
    assert run.plan == {"checks": []}
    assert [(s.position, s.name, s.status) for s in run.steps] == [
        (0, "capture_logs", StepStatus.PENDING),
        (1, "set_image_tag", StepStatus.PENDING),
        (2, "pull", StepStatus.PENDING),
    ]
    assert run.finished_at is None and run.error is None
    assert [(e.kind, e.actor) for e in run.events] == [("run.planned", "cli:alice")]
    assert_utc(run.created_at)


def test_record_plan_refused(journal: Journal) -> None:
    """A refused plan is history too: final at once, with the reason as its error."""
    run = journal.record_plan(new_run(steps=[]), actor="slack:U1", refusal="unknown target 'x'")
    assert run.status is RunStatus.REFUSED
    assert run.status.is_final
    assert run.error == "unknown target 'x'"
    assert run.steps == ()
    assert_utc(run.finished_at)
    assert [(e.kind, e.details) for e in run.events] == [("run.refused", {"refusal": "unknown target 'x'"})]


def test_overlong_fields_are_clipped_not_rejected(journal: Journal) -> None:
    """A pasted essay as a target name is still journaled (as the refusal it will be)."""
    run = journal.record_plan(new_run(target="t" * 500, version="v" * 500), actor="a", refusal="unknown target")
    assert len(run.target) == 128 and run.target.endswith("…")
    assert len(run.to_version) == 160


# --- a run's life --------------------------------------------------------------------------------


def test_a_run_journals_every_step_in_order(journal: Journal) -> None:
    """start → step started/finished ×3 → finish: rows and events agree, and times are UTC."""
    run_id = journal.record_plan(new_run(), actor="cli:alice").id
    journal.start(run_id, "cli:alice", owner="host:123")
    seen = []
    for position, status in enumerate([StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.SUCCEEDED]):
        seen.append(journal.step_started(run_id, position, "cli:alice"))
        middle = journal.run(run_id)
        assert middle.current_step == STEPS[position][0]
        assert middle.steps[position].status is StepStatus.RUNNING
        seen.append(journal.step_finished(run_id, position, "cli:alice", status, {"n": position}))
    seen.append(journal.finish(run_id, "cli:alice", RunStatus.SUCCEEDED, summary={"healthy": True}))

    run = journal.run(run_id)
    assert run.status is RunStatus.SUCCEEDED and run.owner == "host:123"
    assert run.summary == {"healthy": True}
    assert [e.kind for e in run.events] == [
        "run.planned",
        "run.started",
        "step.started",
        "step.finished",
        "step.started",
        "step.finished",
        "step.started",
        "step.finished",
        "run.finished",
    ]
    assert [e.id for e in run.events[2:]] == [e.id for e in seen], "returned events are the journaled ones"
    assert [e.id for e in run.events] == sorted(e.id for e in run.events)
    assert [e.at for e in run.events] == sorted(e.at for e in run.events)
    finished = [e for e in run.events if e.kind == "step.finished"]
    assert [(e.details["step"], e.details["position"], e.outcome) for e in finished] == [
        ("capture_logs", 0, "succeeded"),
        ("set_image_tag", 1, "skipped"),
        ("pull", 2, "succeeded"),
    ]
    assert run.events[-1].outcome == "succeeded"
    for step in run.steps:
        assert_utc(step.started_at)
        assert_utc(step.finished_at)
        assert step.started_at is not None and step.finished_at is not None
        assert step.started_at <= step.finished_at
        assert step.seconds is not None and step.seconds >= 0
        assert step.detail == {"n": step.position}
    for moment in (run.created_at, run.started_at, run.finished_at, *(e.at for e in run.events)):
        assert_utc(moment)
    assert run.seconds is not None and run.seconds > 0


def test_a_failed_step_keeps_its_error(journal: Journal) -> None:
    """The error of a step is on the step row and in its event."""
    run_id = journal.record_plan(new_run(), actor="a").id
    journal.start(run_id, "a", "host:1")
    journal.step_started(run_id, 0, "a")
    event = journal.step_finished(run_id, 0, "a", StepStatus.FAILED, {}, "container is gone")
    journal.finish(run_id, "a", RunStatus.FAILED, "step capture_logs failed", "fix it", {"healthy": False})
    run = journal.run(run_id)
    assert event.details["error"] == "container is gone"
    assert run.steps[0].status is StepStatus.FAILED and run.steps[0].error == "container is gone"
    assert (run.error, run.next_action) == ("step capture_logs failed", "fix it")
    assert run.steps[1].status is StepStatus.PENDING and run.steps[1].started_at is None


def test_only_a_planned_run_can_start(journal: Journal) -> None:
    """A refused or cancelled run never runs, and a run never starts twice."""
    refused = journal.record_plan(new_run(), actor="a", refusal="no").id
    with pytest.raises(ValueError, match="refused"):
        journal.start(refused, "a", "host:1")
    cancelled = journal.record_plan(new_run(), actor="a").id
    journal.cancel(cancelled, "a", "not confirmed")
    with pytest.raises(ValueError, match="cancelled"):
        journal.start(cancelled, "a", "host:1")
    started = journal.record_plan(new_run(), actor="a").id
    journal.start(started, "a", "host:1")
    with pytest.raises(ValueError, match="running"):
        journal.start(started, "a", "host:2")
    assert journal.run(started).owner == "host:1"
    assert journal.run(cancelled).error == "not confirmed"


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    """A clock without a zone would silently shift times; the journal refuses it."""
    naive = Journal(engine, clock=lambda: datetime(2026, 11, 26, 3, 0))
    with pytest.raises(StatementError, match="naive datetime"):
        naive.record_plan(new_run(), actor="a")
    assert Journal(engine).runs() == []


# --- history ---------------------------------------------------------------------------------------


def test_runs_newest_first_and_filtered_by_target(journal: Journal) -> None:
    """`history` shows the latest first, and `history engine` only the Engine."""
    ids = [journal.record_plan(new_run(target=t), actor="a").id for t in ["engine", "other", "engine", "engine"]]
    assert [r.id for r in journal.runs()] == list(reversed(ids))
    assert [r.id for r in journal.runs("engine")] == [ids[3], ids[2], ids[0]]
    assert [r.id for r in journal.runs("other")] == [ids[1]]
    assert journal.runs("nope") == []
    assert [r.id for r in journal.runs("engine", limit=2)] == [ids[3], ids[2]]
    assert all(r.events == () for r in journal.runs()), "the list view stays light"


def test_run_ids_are_sortable_by_time(journal: Journal) -> None:
    """Ids start with the UTC time, so a person can tell old from new at a glance."""
    first = journal.record_plan(new_run(), actor="a")
    second = journal.record_plan(new_run(), actor="a")
    assert first.id.startswith(f"{first.created_at:%Y%m%d-%H%M%S}-")
    assert first.id < second.id


# --- crash recovery ------------------------------------------------------------------------------------


def age_heartbeat(engine: Engine, run_id: str, by: timedelta) -> None:
    """Make a run's last heartbeat `by` older, as if its owner had gone silent that long: the
    database's clock, not the test's, then judges it."""
    with Session(engine) as session, session.begin():
        row = session.get_one(RunRow, run_id)
        assert row.heartbeat_at is not None
        row.heartbeat_at = row.heartbeat_at - by


def running(journal: Journal, owner: str, at_step: int) -> str:
    """A run in progress; each on a target of its own, as the database allows one per target."""
    run_id = journal.record_plan(new_run(target=f"engine-{owner}-{at_step}"), actor="a").id
    journal.start(run_id, "a", owner)
    for position in range(at_step):
        journal.step_started(run_id, position, "a")
        journal.step_finished(run_id, position, "a", StepStatus.SUCCEEDED)
    journal.step_started(run_id, at_step, "a")
    return run_id


def test_mark_interrupted_only_touches_runs_of_dead_owners(journal: Journal) -> None:
    """A run whose process died becomes interrupted, keeping the step it was in; live ones are left."""
    dead = running(journal, "host:111", at_step=2)
    alive = running(journal, "host:222", at_step=1)
    planned = journal.record_plan(new_run(), actor="a").id
    finished = running(journal, "host:111", at_step=0)
    journal.step_finished(finished, 0, "a", StepStatus.SUCCEEDED)
    journal.finish(finished, "a", RunStatus.SUCCEEDED)

    def owner_alive(owner: str) -> bool:
        return owner == "host:222"

    marked = journal.mark_interrupted(owner_alive, actor="rollbot@host:999")

    assert [run.id for run in marked] == [dead]
    run = journal.run(dead)
    assert run.status is RunStatus.INTERRUPTED
    assert run.current_step == "pull"
    assert run.steps[2].status is StepStatus.RUNNING, "the step it was in stays visible as running"
    assert run.error is not None and "'pull'" in run.error
    assert run.next_action
    assert_utc(run.finished_at)
    assert (run.events[-1].kind, run.events[-1].actor, run.events[-1].details) == (
        "run.interrupted",
        "rollbot@host:999",
        {"step": "pull", "owner": "host:111"},
    )
    assert journal.run(alive).status is RunStatus.RUNNING
    assert journal.run(planned).status is RunStatus.PLANNED
    assert journal.run(finished).status is RunStatus.SUCCEEDED
    assert journal.mark_interrupted(owner_alive, actor="again") == [], "recovery is idempotent"


def test_a_silent_owner_is_taken_over_once(engine: Engine) -> None:
    """Heartbeats, a stale run marked interrupted, its report claimed once, and a take-over
    (resume) that one replica wins; the old owner learns it lost the run at its next step."""
    clock = TickingClock()
    journal = Journal(engine, clock=clock)
    run_id = running(journal, "host:1", at_step=1)
    assert journal.heartbeat(run_id, "host:1") and not journal.heartbeat(run_id, "host:2")
    assert journal.mark_interrupted(lambda owner: True, "r", stale_after=timedelta(seconds=30)) == []
    clock.now += timedelta(minutes=5)
    assert journal.mark_interrupted(lambda owner: True, "r", stale_after=timedelta(seconds=30)) == [], (
        "the reader's clock moving on says nothing: staleness is judged by the database's clock"
    )
    age_heartbeat(engine, run_id, timedelta(minutes=5))
    [stale] = journal.mark_interrupted(lambda owner: True, "r", stale_after=timedelta(seconds=30))
    assert (stale.id, stale.status, stale.events[-1].details.get("heartbeat")) == (
        run_id,
        RunStatus.INTERRUPTED,
        "stale",
    )
    assert not journal.heartbeat(run_id, "host:1")
    assert [run.id for run in journal.unreported_interruptions()] == [run_id]
    assert [journal.claim_report(run_id), journal.claim_report(run_id)] == [True, False]
    assert journal.unreported_interruptions() == []
    journal.reclaim(run_id, "a", "host:2", "run.resumed", {"by": "U1"})
    with pytest.raises(NotStartable, match="not interrupted"):
        journal.reclaim(run_id, "b", "host:3", "run.resumed", {"by": "U2"})
    with pytest.raises(LostRun):
        journal.step_started(run_id, 2, "a", owner="host:1")
    journal.step_started(run_id, 2, "a", owner="host:2")
    resumed = journal.run(run_id)
    assert (resumed.status, resumed.owner, resumed.current_step) == (RunStatus.RUNNING, "host:2", "pull")
    assert_utc(resumed.events[-1].at)


def test_an_interrupted_run_holds_its_target(journal: Journal) -> None:
    """An interrupted rollback left the service half-way: the partial unique index refuses to
    start another rollback of its target until it is resumed or aborted, and names it."""
    first = running(journal, "host:1", at_step=0)
    journal.mark_interrupted(lambda owner: False, "r")
    second = journal.record_plan(new_run(target=journal.run(first).target), actor="a").id
    with pytest.raises(NotStartable, match=f"in progress: {first} \\(interrupted\\)"):
        journal.start(second, "a", "host:2")
    assert journal.run(second).status is RunStatus.PLANNED
    journal.reclaim(first, "a", "host:3", "run.resumed", {})
    assert journal.run(first).status is RunStatus.RUNNING


def test_what_metrics_count(journal: Journal) -> None:
    """Runs by target, kind and status, and the seconds of finished steps, as the journal has them."""
    done = running(journal, "host:1", at_step=0)
    journal.step_finished(done, 0, "a", StepStatus.SUCCEEDED)
    journal.finish(done, "a", RunStatus.SUCCEEDED)
    journal.record_plan(new_run(target="other"), actor="a", refusal="no")
    assert sorted(journal.run_counts()) == [
        (journal.run(done).target, "rollback", "succeeded", 1),
        ("other", "rollback", "refused", 1),
    ]
    run = journal.run(done)
    assert run.steps[0].seconds is not None and run.steps[0].seconds > 0
    assert journal.step_durations() == [(run.target, "capture_logs", "succeeded", run.steps[0].seconds)]


# --- the SQLite file -------------------------------------------------------------------------------------


def test_database_file_is_in_wal_mode(tmp_path: Path) -> None:
    """WAL is a property of the file: any other reader (sqlite3 CLI, `history`) sees it."""
    engine = connect(sqlite_url(tmp_path))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with sqlite3.connect(tmp_path / "j.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    engine.dispose()


def test_migrations_are_idempotent(database_url: str) -> None:
    """Every start migrates; the second start finds the schema current and the data intact."""
    first = connect(database_url)
    run_id = Journal(first).record_plan(new_run(), actor="a").id
    again = connect(database_url)
    assert Journal(again).run(run_id).status is RunStatus.PLANNED
    with again.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all() == [
            _head_revision()
        ]
        tables = inspect(connection).get_table_names()
    assert {"runs", "steps", "events", "tickets", "alembic_version"} <= set(tables)
    first.dispose()
    again.dispose()


def test_the_database_allows_one_running_run_per_target(journal: Journal) -> None:
    """Two planned runs of one target: the first start wins, the second is refused by the index."""
    first = journal.record_plan(new_run(), actor="a").id
    second = journal.record_plan(new_run(), actor="b").id
    journal.start(first, "a", "host:1")
    with pytest.raises(NotStartable, match="another run of this target is in progress"):
        journal.start(second, "b", "host:2")
    assert journal.run(second).status is RunStatus.PLANNED
    journal.finish(first, "a", RunStatus.SUCCEEDED)
    journal.start(second, "b", "host:2")
    assert journal.run(second).status is RunStatus.RUNNING


def test_racing_starts_claim_exactly_one_run(database_url: str) -> None:
    """Two plans of one target, each clicked twice at the same moment on four engines (four
    replicas): one start wins each round, the other three are refused, twenty rounds in a row."""
    engines = [connect(database_url) for _ in range(4)]
    journals = [Journal(engine) for engine in engines]
    for round_ in range(20):
        plans = [journals[0].record_plan(new_run(), actor="a").id for _ in range(2)]
        together = threading.Barrier(4)
        outcomes: list[str] = []

        def click(
            journal: Journal,
            run_id: str,
            owner: str,
            together: threading.Barrier = together,
            outcomes: list[str] = outcomes,
        ) -> None:
            together.wait(timeout=30)
            try:
                journal.start(run_id, "a", owner)
                outcomes.append(f"started {run_id}")
            except NotStartable:
                outcomes.append("refused")

        threads = [threading.Thread(target=click, args=(journals[i], plans[i % 2], f"host:{i}")) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == ["refused"] * 3 + [next(o for o in outcomes if o != "refused")], outcomes
        running = journals[1].runs("engine", status=RunStatus.RUNNING)
        assert [f"started {run.id}" for run in running] == [o for o in outcomes if o != "refused"]
        journals[2].finish(running[0].id, "a", RunStatus.SUCCEEDED)
        for run_id in plans:
            journals[3].cancel(run_id, "a", f"round {round_} is over")
    assert len(journals[0].runs("engine", limit=100, status=RunStatus.SUCCEEDED)) == 20
    for engine in engines:
        engine.dispose()


def test_context_merges_from_many_threads_lose_nothing(database_url: str) -> None:
    """Front ends remember facts about a run from several threads and replicas (the plan
    message, the announcement, the status message): every merge is kept."""
    engines = [connect(database_url) for _ in range(4)]
    run_id = Journal(engines[0]).record_plan(new_run(), actor="a").id
    together = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def remember(engine: Engine, who: int) -> None:
        try:
            journal = Journal(engine)
            together.wait(timeout=30)
            for fact in range(10):
                journal.set_context(run_id, **{f"fact-{who}-{fact}": fact})
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=remember, args=(engine, who)) for who, engine in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    context = Journal(engines[0]).run(run_id).context
    assert context == {f"fact-{who}-{fact}": fact for who in range(len(engines)) for fact in range(10)}
    for engine in engines:
        engine.dispose()


def test_text_postgresql_would_refuse_is_kept_as_on_sqlite(journal: Journal) -> None:
    """PostgreSQL refuses NUL characters in text and values longer than a column; SQLite takes
    both. Slack's fields are anyone's input, so the journal stores the same thing on both: a
    NUL becomes U+FFFD, an overlong actor or approver is clipped."""
    run = journal.record_plan(
        NewRun(
            target="engine\x00",
            to_version="2.3.1",
            requester="U\x00" + "x" * 400,
            steps=STEPS,
            reason="broke\x00 after deploy",
            plan={"note": "nul \x00 in json"},
        ),
        actor="slack:" + "U" * 400,
    )
    assert run.target == "engine\ufffd" and run.reason == "broke\ufffd after deploy"
    assert run.requester.startswith("U\ufffdx") and len(run.requester) == 256
    assert run.plan == {"note": "nul \x00 in json"}, "JSON keeps the character: it is escaped there"
    assert len(run.events[0].actor) == 256
    journal.start(run.id, "slack:\x00" + "A" * 400, owner="host:1", approver="U\x00" + "A" * 400)
    journal.note(run.id, "a\x00", "run.confirmed", {"by": "a\x00"})
    started = journal.run(run.id)
    assert started.approver is not None and started.approver.startswith("U\ufffdA") and len(started.approver) == 256
    assert [e.actor[:7] for e in started.events[1:]] == ["slack:\ufffd", "a\ufffd"]
    with pytest.raises(NoResultFound):
        journal.run("20261126-031914-a3f9c2\x00")


def test_connect_creates_the_folder(tmp_path: Path) -> None:
    """`DATABASE_URL=sqlite:///state/rollbot.db` works on a fresh machine."""
    connect(f"sqlite:///{tmp_path}/state/deeper/j.db")
    assert (tmp_path / "state" / "deeper" / "j.db").is_file()


def test_a_postgresql_url_without_a_driver_uses_psycopg() -> None:
    """`DATABASE_URL=postgresql://…`, as hosting providers hand it out, works as it is."""
    with fresh_postgres_database() as database_url:
        bare = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        engine = connect(bare)
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
        assert Journal(engine).record_plan(new_run(), actor="a").status is RunStatus.PLANNED
        engine.dispose()


def _full_run(journal: Journal, owner: str, steps: int) -> str:
    run_id = journal.record_plan(
        new_run(target=f"engine-{owner}", steps=[(f"step{i}", "") for i in range(steps)]), actor=owner
    ).id
    journal.start(run_id, owner, owner)
    for position in range(steps):
        journal.step_started(run_id, position, owner)
        journal.step_finished(run_id, position, owner, StepStatus.SUCCEEDED, {"by": owner})
        journal.runs()
    journal.finish(run_id, owner, RunStatus.SUCCEEDED)
    return run_id


def test_two_threads_write_one_database_concurrently(database_url: str) -> None:
    """A run writing while another thread writes too (Slack + recovery): both succeed, nothing lost."""
    engines = [connect(database_url), connect(database_url)]
    start = threading.Barrier(2)
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def work(name: str, engine: Engine, offset: timedelta) -> None:
        try:
            journal = Journal(engine, clock=lambda: datetime.now(UTC) + offset)
            start.wait(timeout=10)
            results[name] = _full_run(journal, name, steps=25)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=("host:1", engines[0], timedelta(0))),
        threading.Thread(target=work, args=("host:2", engines[1], timedelta(days=1))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    reader = Journal(connect(database_url))
    for name, run_id in results.items():
        run = reader.run(run_id)
        assert run.status is RunStatus.SUCCEEDED
        assert [s.status for s in run.steps] == [StepStatus.SUCCEEDED] * 25
        assert {s.detail["by"] for s in run.steps} == {name}
        assert len(run.events) == 2 + 2 * 25 + 1
    assert len(results) == 2


def _connect_when_released(database_url: str, gate: Callable[[], object], answers: multiprocessing.Queue) -> None:
    try:
        gate()
        Journal(connect(database_url)).runs()
        answers.put("ok")
    except Exception as error:  # noqa: BLE001 - the parent reports it
        answers.put(f"{type(error).__name__}: {str(error).splitlines()[0]}")


def test_processes_starting_together_on_a_fresh_database_all_succeed(new_database: Callable[[], str]) -> None:
    """`rollbot serve` and a `rollbot history` (or two replicas) started at once both migrate a
    new journal.

    Migrations run on every start; first starts that coincide must not race each other into
    'table runs already exists'. Three rounds of four processes, each on a fresh database.
    """
    context = multiprocessing.get_context("fork")
    outcomes: list[str] = []
    for _ in range(3):
        barrier = context.Barrier(4)
        answers = context.Queue()
        database_url = new_database()
        processes = [
            context.Process(target=_connect_when_released, args=(database_url, barrier.wait, answers)) for _ in range(4)
        ]
        for process in processes:
            process.start()
        outcomes += [answers.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=30)
        assert Journal(connect(database_url)).runs() == []
    assert [o for o in outcomes if o != "ok"] == []


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from storage.database import MIGRATIONS

    return ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""
