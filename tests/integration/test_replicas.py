"""Two `rollbot serve` replicas sharing one PostgreSQL database, driven as Slack drives them.

Each round posts a plan with a slash command (to the replicas in turn), then two approvers click
its approve button at the same moment, one click to each replica, signed and form-encoded as
Slack sends them. The versions alternate between two healthy releases, so every round is a real
rollback of the demo Engine on the real Docker daemon. The database, not either process, decides
who runs: every plan must be run exactly once, never two runs of the target at once, and the
other click must be told why it did nothing.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from handlers.ids import ActionId
from storage import Journal, RunStatus, RunView, connect
from tests.databases import fresh_postgres_database
from tests.integration.demo import HEALTHY, REPOSITORY, build_demo_images, deployment, wait_until
from tests.integration.slack_harness import Bot, button, serving, slack_web_api
from tests.slackapi.signing import Reply

ROUNDS = 50
PREVIOUS = "2.3.0"  # a second healthy release: the rounds roll back and forth between the two
REQUESTER = "U0REQUEST1"
APPROVERS = ("U0APPROVER", "U0APPROVE2")
NOT_STARTED = ("this rollback is already running", "nothing was done")


def test_two_replicas_start_exactly_one_run_per_plan(tmp_path: Path) -> None:
    build_demo_images({PREVIOUS: (False, 1)})
    began = time.monotonic()
    with (
        fresh_postgres_database() as database_url,
        slack_web_api() as (slack, prism),
        deployment(
            tmp_path,
            running=HEALTHY,
            drain_seconds=0.1,
            drain_timeout=2,
            health_timeout=30,
            config_edits={"approvers: [U0APPROVER]": f"approvers: [{', '.join(APPROVERS)}]"},
        ) as deployed,
        serving(deployed, slack, prism, {"DATABASE_URL": database_url}, log_name="replica-a.log") as first,
        serving(deployed, slack, prism, {"DATABASE_URL": database_url}, log_name="replica-b.log") as second,
    ):
        mark = prism.mark()
        engine = connect(database_url)
        journal = Journal(engine)
        replicas = (first, second)
        rounds_began = time.monotonic()
        for round_ in range(ROUNDS):
            version = PREVIOUS if round_ % 2 == 0 else HEALTHY
            run_id = one_round(replicas, journal, round_, version)
            run = journal.run(run_id)
            assert run.status is RunStatus.SUCCEEDED, f"round {round_}: {run.status} {run.error}"
            answer = deployed.health()
            assert answer is not None and answer.json()["version"] == version, f"round {round_}: {answer}"
        rounds_took = time.monotonic() - rounds_began
        assert deployed.container().attrs["Config"]["Image"] == f"{REPOSITORY}:{version}", (
            "the last round's release runs"
        )

        runs = journal.runs("engine", limit=10 * ROUNDS)
        assert_one_run_per_plan(journal, runs)
        assert_each_replica_ran_its_own_clicks(runs)

        refusals = wait_until_counted(lambda: [m["text"] for a in APPROVERS for m in slack.ephemerals(a)], ROUNDS)
        assert all(any(why in text for why in NOT_STARTED) for text in refusals), refusals
        assert prism.violations(since=mark) == []
        for replica in replicas:
            assert "Traceback" not in replica.log(), replica.log_file.name
        engine.dispose()
        per_replica = Counter(run.approver for run in runs)
        print(
            f"\n{ROUNDS} rounds in {rounds_took:.0f} s ({time.monotonic() - began:.0f} s with set-up); "
            f"runs per replica: {per_replica[APPROVERS[0]]} and {per_replica[APPROVERS[1]]}"
        )


def one_round(replicas: tuple[Bot, Bot], journal: Journal, round_: int, version: str) -> str:
    """A plan from one replica, two clicks at once (one per replica); returns the run's id once
    the run has finished."""
    hint = f"round-{round_:02d}-of-{ROUNDS}"
    # The rounds go back and forth on purpose: the version the last round rolled back from is
    # known-bad ("root cause first") until cleared, so each round clears it first, as a person would.
    journal.clear_known_bad("engine", version, "test", "the rounds roll back and forth on purpose")
    acked = replicas[round_ % 2].command(f"engine {version} {hint}", REQUESTER)
    assert acked.status == 200, acked
    plan = replicas[0].plan_message(hint)
    approve = button(plan, ActionId.APPROVE)
    assert approve is not None, f"round {round_}: the plan has no approve button: {plan.get('text')}"
    replies = clicks_at_once(replicas, approve["value"], plan)
    assert [reply.status for reply in replies] == [200, 200], replies
    wait_until(lambda: journal.run(approve["value"]).status.is_final, 90, what=f"round {round_}'s run to finish")
    done = journal.run(approve["value"])
    if done.kind == "rollback" and done.status is RunStatus.SUCCEEDED:  # marked known-bad once the run has ended
        wait_until(lambda: journal.known_bad("engine", str(done.from_version)) is not None, 30, what="the mark")
    return str(approve["value"])


def clicks_at_once(replicas: tuple[Bot, Bot], run_id: str, plan: dict) -> list[Reply]:
    """Approver i clicks on replica i; both requests leave at the same moment."""
    together = threading.Barrier(len(replicas))
    replies: list[Reply | None] = [None] * len(replicas)

    def click(index: int) -> None:
        together.wait(timeout=10)
        replies[index] = replicas[index].click(ActionId.APPROVE, run_id, APPROVERS[index], plan)

    threads = [threading.Thread(target=click, args=(index,)) for index in range(len(replicas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(reply is not None for reply in replies), "a click got no answer"
    return [reply for reply in replies if reply is not None]


def assert_one_run_per_plan(journal: Journal, runs: list[RunView]) -> None:
    """Every plan ran once (started once, succeeded), and no two runs overlapped in time."""
    assert len(runs) == ROUNDS, [(run.id, run.status) for run in runs]
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * ROUNDS
    for run in runs:
        assert [e.kind for e in journal.run(run.id).events].count("run.started") == 1, run.id
    spans = sorted((run.started_at, run.finished_at) for run in runs)
    for (_, finished), (started, _) in itertools.pairwise(spans):
        assert finished is not None and started is not None and finished <= started, "two runs overlapped"


def assert_each_replica_ran_its_own_clicks(runs: list[RunView]) -> None:
    """Approver i only ever clicks on replica i, so the runs of one owner (one process) all have
    the same approver, and a click on either replica counts: both replicas ran rounds."""
    approvers_by_owner: dict[str | None, set[str | None]] = defaultdict(set)
    for run in runs:
        approvers_by_owner[run.owner].add(run.approver)
    assert sorted(sorted(a or "" for a in approvers) for approvers in approvers_by_owner.values()) == sorted(
        [approver] for approver in APPROVERS
    ), dict(approvers_by_owner)


def wait_until_counted(probe, count: int, timeout: float = 60) -> list:  # type: ignore[no-untyped-def]
    """`probe()` once it returns `count` items (refusals are delivered after the run ends)."""
    wait_until(lambda: len(probe()) >= count, timeout, what=f"{count} refusals")
    found = probe()
    assert len(found) == count, found
    return found
