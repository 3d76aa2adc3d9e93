"""`rollbot replay`: the bad window's rows back from the forensic copy, on the demo Engine.

After a rollback of 2.4.0 that restored the brain, 2.3.1 runs on the snapshot and keeps
remembering; the bad window's conversations and feedback are in the forensic copy. The replay
copies those the live brain lacks while the Engine runs, journals every key, names the keys the
restored version has used since, and refuses tables the running version's schema cannot take.
"""

from __future__ import annotations

import csv
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from storage import EventKind
from tests.integration.demo import BROKEN, HEALTHY, Deployment, deployment
from tests.integration.outside import outside_deployment

BAD_WINDOW = [("U1", "C1"), ("U2", "C2"), ("U3", "C3"), ("U3", "C3")]


def rolled_back(deployed: Deployment) -> str:
    """Two turns of U0, a snapshot, 2.4.0 and four bad-window turns, the rollback; returns the run id."""
    deployed.turn("U0", "C0", "before")
    deployed.turn("U0", "C0", "before")
    taken = deployed.rollbot("snapshot", "engine")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    deployed.deploy(BROKEN)
    for user, conversation in BAD_WINDOW:
        deployed.turn(user, conversation, "in the bad window")
    done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "2.4.0 cannot serve")
    assert done.returncode == 0, done.stdout + done.stderr
    return deployed.runs()[0].id


@pytest.fixture
def restored(tmp_path: Path) -> Iterator[tuple[Deployment, str]]:
    with deployment(tmp_path, running=HEALTHY, brain=True) as deployed:
        yield deployed, rolled_back(deployed)


def conversations(brain: Path) -> list[tuple[int, str | None, str]]:
    with closing(sqlite3.connect(f"file:{brain}?mode=ro", uri=True)) as live:
        return live.execute("SELECT id, user_id, content FROM conversations ORDER BY id").fetchall()


def test_dry_run_then_replay_copies_each_row_once_and_journals_it(restored: tuple[Deployment, str]) -> None:
    deployed, run_id = restored
    deployed.turn("U9", "C9", "after the rollback")  # 2.3.1 takes key 3, which the bad window used too
    before = conversations(deployed.brain)

    dry = deployed.rollbot("replay", run_id, "--table", "conversations", "--dry-run")

    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.strip() == (
        "dry run: conversations: 4 row(s) of the bad window in the forensic copy; would copy 3, 0 already in the "
        "live brain, 1 conflict(s) by primary key (id): 3 (the live brain holds other rows under these keys; "
        "they are not copied)"
    )
    assert conversations(deployed.brain) == before, "a dry run copies nothing"

    done = deployed.rollbot("replay", run_id, "--table", "conversations")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "copied 3, 0 already in the live brain, 1 conflict(s)" in done.stdout
    after = conversations(deployed.brain)
    assert [(key, user) for key, user, _ in after] == [
        (1, "U0"),
        (2, "U0"),
        (3, "U9"),
        (4, "U2"),
        (5, "U3"),
        (6, "U3"),
    ]
    assert all(content.startswith(f"{BROKEN}: ") for key, _, content in after if key > 3)
    events = [e for e in deployed.journal().run(run_id).events if e.kind == EventKind.BRAIN_REPLAYED]
    assert [e.details["copied_keys"] for e in events] == [[[4], [5], [6]]]
    assert deployed.health().json()["status"] == "ok", "the Engine ran through the replay"

    again = deployed.rollbot("replay", run_id, "--table", "conversations")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "copied 0, 3 already in the live brain, 1 conflict(s)" in again.stdout
    assert conversations(deployed.brain) == after
    events = [e for e in deployed.journal().run(run_id).events if e.kind == EventKind.BRAIN_REPLAYED]
    assert [e.details["copied"] for e in events] == [3, 0]


def test_tables_the_running_schema_cannot_take_are_refused(restored: tuple[Deployment, str]) -> None:
    deployed, run_id = restored
    before = conversations(deployed.brain)

    episodes = deployed.rollbot("replay", run_id, "--table", "episodes")
    tools = deployed.rollbot("replay", run_id, "--table", "tool_calls")
    unknown = deployed.rollbot("replay", "20260101-000000-abcdef", "--table", "episodes")

    assert episodes.returncode == 2
    assert (
        f"cannot replay episodes from run {run_id}: the live table episodes has no column embedding_model that the "
        "forensic copy's rows fill: replaying would drop that data" in episodes.stderr + episodes.stdout
    )
    assert tools.returncode == 2
    assert "the live brain has no table tool_calls" in tools.stderr + tools.stdout
    assert (
        unknown.returncode == 2 and "no run '20260101-000000-abcdef' in the journal" in unknown.stderr + unknown.stdout
    )
    assert "Traceback" not in episodes.stderr + tools.stderr + unknown.stderr
    assert conversations(deployed.brain) == before


def test_affected_users_and_replay_on_the_owners_deployment(tmp_path: Path) -> None:
    """The owners' layout (override file, .env project name, a one-off they stop first, the
    runbook's snapshot taken by hand): the postmortem names the bad window's three users, and
    their feedback comes back by replay."""
    affected = "      affected: {feedback: [user_id]}\n"
    with outside_deployment(tmp_path, running=HEALTHY, brain=True, brain_extra=affected) as owners:
        owners.turn("U0", "C0", "before")
        owners.take_hand_snapshot()
        owners.deploy(BROKEN)
        for user, conversation in BAD_WINDOW:
            owners.turn(user, conversation, "in the bad window")
        subprocess.run(["docker", "stop", "--time", "1", owners.oneoff().name], check=True, capture_output=True)
        done = owners.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "5xx since 2.4.0")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "who was affected: feedback.user_id: 3 distinct in 4 row(s)" in done.stdout
        run_id = owners.runs()[0].id
        with (owners.folder / "postmortems" / run_id / "affected-users.csv").open(newline="") as listed:
            assert list(csv.reader(listed)) == [
                ["table", "column", "value", "rows"],
                ["feedback", "user_id", "U1", "1"],
                ["feedback", "user_id", "U2", "1"],
                ["feedback", "user_id", "U3", "2"],
            ]

        replayed = owners.rollbot("replay", run_id, "--table", "feedback")

        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "feedback: 4 row(s) of the bad window in the forensic copy; copied 4, 0 already" in replayed.stdout
        with closing(sqlite3.connect(f"file:{owners.brain}?mode=ro", uri=True)) as live:
            users = [row[0] for row in live.execute("SELECT user_id FROM feedback ORDER BY id")]
        assert users == ["U0", "U1", "U2", "U3", "U3"]
