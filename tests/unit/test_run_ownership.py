"""One owner per run, judged by the database (issue 12, observations 2 and 3).

Storage tests run on a fresh SQLite file and a fresh PostgreSQL database (`new_database`), as
replicas share PostgreSQL in production. Runner tests use the real journal and compose file with
the fake Docker host of tests/unit/fakes.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.core.outcomes import Recovery
from bot.core.rollbot import Rollbot
from bot.planning.plan import RollbackRequest, StepKind
from bot.running.runner import Runner, StepFailed
from storage import Journal, Lease, LostRun, NotStartable, RunStatus, StepStatus, connect
from storage.models import RunRow
from storage.repository import IllegalMove
from storage.runstate import MOVES

from .fakes import COMPOSE_TEXT, REPO, FakeHealth, World
from .test_brain_runner import Restore
from .test_resume import die, runner
from .test_runner import ACTOR, Ticks, planned
from .test_storage import age_heartbeat, new_run

STALE = timedelta(seconds=30)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = connect(database_url)
    yield engine
    engine.dispose()


def started(journal: Journal, owner: str, target: str = "engine") -> tuple[str, Lease]:
    run_id = journal.record_plan(new_run(target=target), actor="a").id
    return run_id, Lease.of(journal.start(run_id, "a", owner).details)


# --- observation 2: liveness by the database's clock ---------------------------------------------


@pytest.mark.parametrize("skew", [timedelta(seconds=31), timedelta(minutes=10), -timedelta(minutes=10)])
def test_a_replica_whose_clock_is_off_never_takes_over_a_live_run(engine: Engine, skew: timedelta) -> None:
    """The live replica beats with its clock right; a replica whose clock is off by `skew` looks
    for stale runs. Only the database's clock judges, so it finds none until the beats really
    stop (the heartbeat aged in the database), and then it does."""
    live = Journal(engine)
    skewed = Journal(engine, clock=lambda: datetime.now(UTC) + skew)
    run_id, lease = started(live, "replica-a:1")
    assert live.heartbeat(run_id, lease)

    assert skewed.mark_interrupted(lambda owner: True, "rollbot@replica-b:1", stale_after=STALE) == []
    assert live.run(run_id).status is RunStatus.RUNNING

    skewed_beat = Journal(engine, clock=lambda: datetime.now(UTC) - skew)
    assert skewed_beat.heartbeat(run_id, lease), "a beat from a skewed writer counts by the database's clock"
    assert skewed.mark_interrupted(lambda owner: True, "rollbot@replica-b:1", stale_after=STALE) == []

    age_heartbeat(engine, run_id, STALE * 2)
    [taken] = skewed.mark_interrupted(lambda owner: True, "rollbot@replica-b:1", stale_after=STALE)
    assert (taken.id, taken.status) == (run_id, RunStatus.INTERRUPTED)
    assert not live.heartbeat(run_id, lease), "the old lease is void after the take-over"


def test_a_stale_lease_is_refused_for_every_write(engine: Engine) -> None:
    """After a take-over (interrupt, then resume by another process, or by the same process:
    owners are host:pid) every write naming the old lease is refused and changes nothing."""
    journal = Journal(engine)
    run_id, old = started(journal, "host:1")
    journal.step_started(run_id, 0, "a", owner=old)
    journal.mark_interrupted(lambda owner: False, "r")
    new = Lease.of(journal.reclaim(run_id, "a", "host:1", "run.resumed", {}).details)
    assert (new.owner, new.epoch) == ("host:1", old.epoch + 2)

    writes: list[Callable[[], object]] = [
        lambda: journal.step_started(run_id, 1, "a", owner=old),
        lambda: journal.step_finished(run_id, 0, "a", StepStatus.SUCCEEDED, owner=old),
        lambda: journal.finish(run_id, "a", RunStatus.FAILED, "stale", owner=old),
        lambda: journal.note(run_id, "a", "brain.put_back", {}, owner=old),
        lambda: journal.hold(run_id, old),
    ]
    for write in writes:
        with pytest.raises(LostRun):
            write()
    run = journal.run(run_id)
    assert (run.status, run.owner, run.steps[0].status) == (RunStatus.RUNNING, "host:1", StepStatus.RUNNING)
    assert [e.kind for e in run.events if e.kind in ("run.finished", "brain.put_back")] == []
    journal.finish(run_id, "a", RunStatus.SUCCEEDED, owner=new)
    assert journal.run(run_id).status is RunStatus.SUCCEEDED


class TakenOverDuring(Runner):
    """A runner whose run is taken over by another replica while one step works, after which
    that step fails: the moment the first runner used to overwrite the run and undo its edit."""

    def __init__(self, *args: Any, journal: Journal, during: StepKind, **kwargs: Any) -> None:
        super().__init__(*args, journal=journal, **kwargs)
        self._taker = journal
        self._during = during

    def _do(self, kind: StepKind, state: Any) -> dict[str, Any]:
        detail = super()._do(kind, state)
        if kind is self._during:
            [taken] = self._taker.mark_interrupted(lambda owner: False, "rollbot@replica-b:2")
            self._taker.reclaim(taken.id, "rollbot@replica-b:2", "replica-b:2", "run.resumed", {"by": "U2"})
            raise StepFailed("the registry went away")
        return detail


def test_a_runner_taken_over_mid_step_stops_before_its_undo(world: World, journal: Journal) -> None:
    """Observation 2: the first runner's step fails after the take-over. It must not journal the
    step, undo the compose edit the new owner relies on, or finish the run as failed."""
    run_id, plan = planned(world, journal)
    health = FakeHealth(world.compose, {"2.3.1"})
    first = TakenOverDuring(
        world.config,
        journal=journal,
        systems=world.systems(),
        health=health,
        actor=ACTOR,
        owner="replica-a:1",
        clock=Ticks(),
        during=StepKind.PULL,
    )
    edited = COMPOSE_TEXT.replace(f"{REPO}:2.4.0", f"{REPO}:2.3.1")

    after = first.execute(run_id, plan)

    assert (after.status, after.owner) == (RunStatus.RUNNING, "replica-b:2")
    assert world.compose_file.read_text() == edited, "the first runner did not put its backup over the file"
    assert [e for e in after.events if e.kind == "run.finished"] == []
    pull = next(s for s in after.steps if s.name == "pull")
    assert pull.status is StepStatus.RUNNING, "the lost runner's step end was refused"


# --- observation 3: an interrupted run holds its target ------------------------------------------


def test_an_interrupted_run_refuses_a_new_plan_and_names_itself(world: World, journal: Journal) -> None:
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    first = rollbot.plan(RollbackRequest("engine", "2.3.1", "slack:U1"))
    journal.start(first.run.id, "slack:U1", owner="elsewhere:1")
    journal.mark_interrupted(lambda owner: False, "r")
    assert journal.run(first.run.id).status is RunStatus.INTERRUPTED

    second = rollbot.plan(RollbackRequest("engine", "2.2.0", "slack:U2"))

    assert second.run.status is RunStatus.REFUSED
    assert first.run.id in (second.plan.refusal or "") and "interrupted" in (second.plan.refusal or "")


def test_abort_refuses_when_the_compose_file_changed_since(tmp_path: Path, journal: Journal) -> None:
    """Observation 3: the run died after editing the file; someone then deployed another version
    by hand. Abort must not write its backup (2.4.0) over their file."""
    scene = Restore(tmp_path)
    run_id, _ = die(scene, journal, "pull", after_work=False)
    by_hand = COMPOSE_TEXT.replace(f"{REPO}:2.4.0", f"{REPO}:2.2.0")
    scene.world.compose_file.write_text(by_hand)

    with pytest.raises(NotStartable, match=f"{scene.world.compose_file} was changed"):
        runner(scene, journal, "testhost:2").abort(journal.run(run_id), by="U0APPROVER")

    assert scene.world.compose_file.read_text() == by_hand
    assert journal.run(run_id).status is RunStatus.INTERRUPTED


def test_resume_refuses_when_the_brain_was_replaced_since(tmp_path: Path, journal: Journal) -> None:
    """Observation 3: the run died after the swap, before `up`; someone put another brain in
    place. Resume must not go on (nor later swap back) over it, and says what changed."""
    scene = Restore(tmp_path)
    run_id, _ = die(scene, journal, "start", after_work=False)
    other = scene.brain.path.with_name("by-hand.sqlite")
    other.write_bytes(scene.snapshot.path.read_bytes())
    other.replace(scene.brain.path)
    rollbot = Rollbot(scene.world.config, journal, scene.world.systems(), FakeHealth(scene.world.compose, {"2.3.1"}))

    outcome = rollbot.take_up(run_id, "U0APPROVER", Recovery.RESUME)

    assert outcome.run is None and outcome.refusal is not None
    assert f"{scene.brain.path} was replaced by another file" in outcome.refusal
    assert journal.run(run_id).status is RunStatus.INTERRUPTED
    assert scene.world.compose.running_image() is None, "nothing was started"


# --- the state machine, under random interleavings ------------------------------------------------

ACTIONS = ["take_over", "heartbeat", "step", "finish", "undo"]


def _row(engine: Engine, run_id: str) -> tuple[RunStatus, str | None, int]:
    with Session(engine) as session:
        status, owner, epoch = session.execute(
            select(RunRow.status, RunRow.owner, RunRow.epoch).where(RunRow.id == run_id)
        ).one()
    return RunStatus(status), owner, epoch


def _act(journal: Journal, run_id: str, action: str, me: str, lease: Lease) -> Lease:
    """One owner's move with the lease it holds; returns the lease it holds afterwards."""
    if action == "take_over":
        journal.mark_interrupted(lambda owner: False, f"rollbot@{me}")
        return Lease.of(journal.reclaim(run_id, "a", me, "run.resumed", {}).details)
    if action == "heartbeat":
        if not journal.heartbeat(run_id, lease):
            raise LostRun("beat refused")
    elif action == "step":
        journal.step_started(run_id, 0, "a", owner=lease)
        journal.step_finished(run_id, 0, "a", StepStatus.SUCCEEDED, owner=lease)
    elif action == "finish":
        journal.finish(run_id, "a", RunStatus.FAILED, "done", owner=lease)
    else:
        journal.hold(run_id, lease)
        journal.note(run_id, "a", "brain.put_back", {}, owner=lease)
    return lease


def test_two_owners_never_both_act_and_no_move_leaves_the_table(tmp_path: Path) -> None:
    """Random interleavings of two owners' moves (take-over, heartbeat, step, finish, undo), the
    owners sometimes one process (same host:pid): a move succeeds only for the one lease the
    database holds, never for two, and every status change is one the table allows."""
    engine = connect(f"sqlite:///{tmp_path}/machine.db")
    journal = Journal(engine)
    allowed = {(before, after) for (before, _), after in MOVES.items()}
    counter = iter(range(1_000_000))

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        same_process=st.booleans(),
        moves=st.lists(st.tuples(st.sampled_from([0, 1]), st.sampled_from(ACTIONS)), min_size=1, max_size=12),
    )
    def interleave(same_process: bool, moves: list[tuple[int, str]]) -> None:
        names = ["host:1", "host:1" if same_process else "host:2"]
        run_id, first = started(journal, names[0], target=f"t{next(counter)}")
        leases = [first, Lease(names[1], -1)]  # the second owner holds nothing until it takes over
        for who, action in moves:
            before = _row(engine, run_id)
            holds = before[0] is RunStatus.RUNNING and (before[1], before[2]) == (leases[who].owner, leases[who].epoch)
            try:
                leases[who] = _act(journal, run_id, action, names[who], leases[who])
                succeeded = True
            except (LostRun, IllegalMove):
                succeeded = False
            after = _row(engine, run_id)
            if action != "take_over":
                assert succeeded == holds, (action, who, before, leases)
            assert (
                after[0] == before[0]
                or (before[0], after[0]) in allowed
                or ((before[0], RunStatus.INTERRUPTED) in allowed and (RunStatus.INTERRUPTED, after[0]) in allowed)
            )
            valid = [
                lease
                for lease in leases
                if after[0] is RunStatus.RUNNING and (lease.owner, lease.epoch) == (after[1], after[2])
            ]
            assert len(valid) <= 1 and (after[0] is not RunStatus.RUNNING or len(valid) == 1)

    try:
        interleave()
    finally:
        engine.dispose()


# --- the migration ---------------------------------------------------------------------------------


def test_the_upgrade_names_targets_held_twice_instead_of_guessing(tmp_path: Path) -> None:
    """A journal of the old version may hold a running and an interrupted rollback of one target
    (observation 3). Revision 0007 cannot build its index over them and does not pick a truth:
    it stops and names both runs; without such pairs it upgrades."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine, text

    from storage.database import MIGRATIONS, migrate

    engine = create_engine(f"sqlite:///{tmp_path}/old.db")
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        for run_id, status in [("20261201-000000-aaaaaa", "interrupted"), ("20261201-000100-bbbbbb", "running")]:
            connection.execute(
                text(
                    "INSERT INTO runs (id, kind, target, to_version, reason, requester, status, created_at, plan, summary,"
                    " context) VALUES (:id, 'rollback', 'engine', '2.3.1', '', 'a', :status, '2026-12-01 00:00:00', '{}',"
                    " '{}', '{}')"
                ),
                {"id": run_id, "status": status},
            )

    with pytest.raises(RuntimeError, match="engine: 20261201-000000-aaaaaa \\(interrupted\\), 20261201-000100-bbbbbb"):
        migrate(engine)

    with engine.begin() as connection:
        connection.execute(text("UPDATE runs SET status = 'aborted' WHERE id = '20261201-000000-aaaaaa'"))
    migrate(engine)
    journal = Journal(engine)
    assert journal.run("20261201-000100-bbbbbb").status is RunStatus.RUNNING
    engine.dispose()
