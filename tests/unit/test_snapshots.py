"""Snapshots of a real brain: taken while it is written, described by a sidecar, found and verified later."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.brain.facts import BrainError, check_integrity
from bot.brain.snapshots import (
    RUNBOOK_NAME,
    Snapshot,
    described_snapshots,
    facts_digest,
    list_snapshots,
    take_snapshot,
    verify,
)
from bot.config import BrainConfig

from .fakes import ENGINE_TABLES, brain_config, brain_contents, make_brain, upgrade_brain

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def by_hand(path: Path, source: Path, mtime: datetime) -> Path:
    """The runbook's snapshot: a file someone copied, with no sidecar, dated by its mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(path)) as copy:
        live.backup(copy)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


def episode_ids(path: Path) -> list[int]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as brain:
        return [row[0] for row in brain.execute("SELECT id FROM episodes ORDER BY id")]


# --- taking a snapshot ---------------------------------------------------------------------------------


def test_snapshot_copies_the_brain_and_describes_it_in_a_sidecar(tmp_path: Path) -> None:
    """The sidecar holds what preflight needs later: time, schema, size, checksum, the tag that ran."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=4)

    snapshot = take_snapshot(brain, "2.4.0", now=NOW)

    assert snapshot.path == brain.snapshots_dir / "brain-20261126T030000Z-2.4.0.sqlite"
    assert brain_contents(snapshot.path) == brain_contents(brain.path)
    sidecar = json.loads(Path(f"{snapshot.path}.json").read_text(encoding="utf-8"))
    assert sidecar["taken_at"] == NOW.isoformat()
    assert sidecar["schema_version"] == 4
    assert sidecar["image_tag"] == "2.4.0"
    assert sidecar["size"] == snapshot.path.stat().st_size
    assert sidecar["checksum"] == hashlib.sha256(snapshot.path.read_bytes()).hexdigest()
    assert (snapshot.schema_version, snapshot.checksum, snapshot.by_hand) == (4, sidecar["checksum"], False)
    assert sorted(p.name for p in brain.snapshots_dir.iterdir()) == [snapshot.path.name, f"{snapshot.path.name}.json"]


def test_snapshot_is_one_self_contained_file_in_rollback_journal_mode(tmp_path: Path) -> None:
    """The live brain is WAL; the snapshot must not be, so opening it never creates -wal/-shm beside it."""
    brain = brain_config(tmp_path)
    make_brain(brain.path)
    snapshot = take_snapshot(brain, None, now=NOW)

    header = snapshot.path.read_bytes()[:100]
    assert (header[18], header[19]) == (1, 1), "file format bytes say rollback journal, not WAL"
    with closing(sqlite3.connect(snapshot.path)) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert reader.execute("SELECT count(*) FROM episodes").fetchone()[0] == 3
        assert not Path(f"{snapshot.path}-wal").exists() and not Path(f"{snapshot.path}-shm").exists()
    assert snapshot.path.name == "brain-20261126T030000Z.sqlite", "no tag known: no tag in the name"


def test_snapshot_taken_while_rows_are_inserted_is_consistent(tmp_path: Path) -> None:
    """The Engine keeps writing during the backup: the copy is some committed state, a prefix of the inserts."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, rows=0)
    stop = threading.Event()
    written: list[int] = []

    def engine() -> None:
        with closing(sqlite3.connect(brain.path, timeout=10)) as writer:
            while not stop.is_set() and len(written) < 5000:
                writer.execute("INSERT INTO episodes (created_at, content) VALUES ('t', ?)", ("x" * 200,))
                writer.commit()
                written.append(1)

    thread = threading.Thread(target=engine)
    thread.start()
    try:
        while len(written) < 50:
            time.sleep(0.001)
        snapshot = take_snapshot(brain, "2.4.0", now=NOW)
    finally:
        stop.set()
        thread.join()

    assert check_integrity(snapshot.path) == ("integrity_check", "ok")
    ids = episode_ids(snapshot.path)
    assert len(ids) >= 50
    assert ids == list(range(1, len(ids) + 1)), "every committed insert up to some point, none after"
    assert len(ids) <= len(episode_ids(brain.path))
    assert verify(snapshot) is None


def test_snapshot_of_a_busy_large_brain_finishes_while_the_engine_keeps_writing(tmp_path: Path) -> None:
    """BUG: the backup copies BACKUP_PAGES_PER_STEP pages per step, and SQLite restarts a backup from
    page 1 whenever another connection commits between two steps. A brain of several steps (here 40 MB,
    10 steps; 1 GB is 64) written a few hundred times a second is not copied until the writes stop.
    One step (pages=-1) reads one WAL snapshot and does not block the writer."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, rows=0)
    with closing(sqlite3.connect(brain.path)) as filler:
        filler.executemany("INSERT INTO knowledge (created_at, content) VALUES ('t', ?)", [("x" * 1000,)] * 40000)
        filler.commit()
    engine = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sqlite3, sys, time\n"
                "w = sqlite3.connect(sys.argv[1], timeout=10)\n"
                "w.execute('PRAGMA synchronous = OFF')\n"
                "w.execute('PRAGMA wal_autocheckpoint = 0')\n"
                "end = time.monotonic() + 5\n"
                "print('writing', flush=True)\n"
                "while time.monotonic() < end:\n"
                "    w.execute(\"INSERT INTO episodes (created_at, content) VALUES ('t', 'x')\")\n"
                "    w.commit()\n"
                "    time.sleep(0.002)\n"
            ),
            str(brain.path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert engine.stdout is not None and engine.stdout.readline() == "writing\n"
        began = time.monotonic()
        snapshot = take_snapshot(brain, "2.4.0", now=NOW)
        took = time.monotonic() - began
        still_writing = engine.poll() is None
    finally:
        engine.wait(timeout=60)
    assert check_integrity(snapshot.path) == ("integrity_check", "ok")
    assert still_writing, f"the snapshot only finished after the Engine stopped writing ({took:.1f}s)"


def test_snapshot_of_a_missing_brain_leaves_nothing_behind(tmp_path: Path) -> None:
    """No brain, no snapshot: a BrainError, and no partial file in the snapshots folder."""
    brain = brain_config(tmp_path)
    with pytest.raises(BrainError, match="does not exist"):
        take_snapshot(brain, "2.4.0", now=NOW)
    assert list(brain.snapshots_dir.iterdir()) == []


# --- finding snapshots ---------------------------------------------------------------------------------


def test_list_finds_rollbots_and_hand_made_snapshots_newest_first(tmp_path: Path) -> None:
    """rollbot's own (sidecar facts) and the runbook's brain-pre-upgrade.db, in the snapshots folder and
    beside the brain (file facts), sorted by when they were taken."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    oldest = take_snapshot(brain, "2.3.1", now=NOW - timedelta(hours=5))
    beside = by_hand(brain.path.parent / RUNBOOK_NAME, brain.path, NOW - timedelta(hours=3))
    upgrade_brain(brain.path, schema=2)
    in_folder = by_hand(brain.snapshots_dir / RUNBOOK_NAME, brain.path, NOW - timedelta(hours=2))
    newest = take_snapshot(brain, "2.4.0", now=NOW - timedelta(hours=1))

    found = list_snapshots(brain)

    assert [s.path for s in found] == [newest.path, in_folder, beside, oldest.path]
    assert found[0] == newest and found[3] == oldest
    hand = found[1]
    assert (hand.by_hand, hand.checksum, hand.image_tag, hand.schema_version) == (True, None, None, 2)
    assert hand.taken_at == NOW - timedelta(hours=2)
    assert hand.size == in_folder.stat().st_size
    assert (found[2].by_hand, found[2].schema_version) == (True, 1)


def test_list_ignores_the_brain_itself_dotfiles_and_other_files(tmp_path: Path) -> None:
    """Only snapshots: not a link to the live brain, not staged or partial dotfiles, not sidecars,
    not other databases beside the brain."""
    brain = brain_config(tmp_path)
    make_brain(brain.path)
    taken = take_snapshot(brain, "2.4.0", now=NOW)
    (brain.snapshots_dir / "current.sqlite").symlink_to(brain.path)
    shutil.copyfile(taken.path, brain.snapshots_dir / ".brain-x.sqlite")
    shutil.copyfile(taken.path, brain.path.parent / ".brain.sqlite.rollbot-staged-run1")
    shutil.copyfile(taken.path, brain.path.parent / "other.db")
    (brain.snapshots_dir / "notes.txt").write_text("not a snapshot", encoding="utf-8")

    assert [s.path for s in list_snapshots(brain)] == [taken.path]


def test_list_finds_snapshots_when_they_live_beside_the_brain(tmp_path: Path) -> None:
    """BUG: with snapshots_dir set to the brain's own folder (a plausible configuration), list_snapshots
    keeps only brain-pre-upgrade.db there, so the snapshot rollbot just took is never found and every
    restore is refused for lack of a snapshot."""
    path = tmp_path / "data" / "brain.sqlite"
    brain = BrainConfig(path=path, snapshots_dir=path.parent)
    make_brain(brain.path)
    taken = take_snapshot(brain, "2.4.0", now=NOW)
    assert [s.path for s in list_snapshots(brain)] == [taken.path]


def test_a_damaged_sidecar_degrades_to_a_hand_made_description(tmp_path: Path) -> None:
    """A sidecar that is not JSON (or lacks keys) must not hide the snapshot: its facts come from the file."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=3)
    broken = take_snapshot(brain, "2.4.0", now=NOW - timedelta(hours=1))
    incomplete = take_snapshot(brain, "2.4.0", now=NOW)
    Path(f"{broken.path}.json").write_text('{"taken_at": "2026-11-26T0', encoding="utf-8")
    Path(f"{incomplete.path}.json").write_text(json.dumps({"taken_at": NOW.isoformat()}), encoding="utf-8")

    found = {s.path: s for s in list_snapshots(brain)}

    for path in (broken.path, incomplete.path):
        described = found[path]
        assert (described.by_hand, described.checksum, described.image_tag) == (True, None, None)
        assert described.schema_version == 3
        assert described.size == path.stat().st_size
        assert verify(described) is None


@pytest.mark.parametrize(
    "key, value",
    [("taken_at", "2026-11-26T01:00:00"), ("schema_version", "1")],
    ids=["time-without-zone", "schema-as-text"],
)
def test_a_sidecar_with_wrongly_typed_facts_counts_as_damaged(tmp_path: Path, key: str, value: str) -> None:
    """BUG: only unparseable JSON or missing keys count as damaged. A taken_at without a timezone makes
    list_snapshots raise TypeError (naive vs aware datetimes); a schema_version given as text is passed
    on and breaks preflight's `schema_version <= reads` with TypeError instead of a refusal."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    take_snapshot(brain, "2.3.1", now=NOW - timedelta(hours=2))
    edited = take_snapshot(brain, "2.3.1", now=NOW - timedelta(hours=1))
    sidecar = Path(f"{edited.path}.json")
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text(encoding="utf-8")), key: value}), encoding="utf-8")

    found = list_snapshots(brain)

    assert len(found) == 2
    assert all(isinstance(s.schema_version, int) and s.taken_at.tzinfo is not None for s in found), found


def test_an_unreadable_hand_made_snapshot_is_listed_with_unknown_schema(tmp_path: Path) -> None:
    """A runbook file that is not a database still shows up (so preflight can say what is wrong with it)."""
    brain = brain_config(tmp_path)
    make_brain(brain.path)
    junk = brain.snapshots_dir / RUNBOOK_NAME
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"\x00garbage" * 1000)
    [found] = list_snapshots(brain)
    assert (found.path, found.schema_version, found.by_hand) == (junk, None, True)
    assert verify(found) is not None


def forge(snapshot: Snapshot, keep_digest: bool = True, **facts: object) -> None:
    """Edit a sidecar's facts, as a mistaken hand or a careless script would; `keep_digest=False`
    also writes a digest over the edited facts (what a writer who knows the format can do)."""
    sidecar = Path(f"{snapshot.path}.json")
    data = {**json.loads(sidecar.read_text(encoding="utf-8")), **facts}
    if not keep_digest:
        data["facts_digest"] = facts_digest(snapshot.path.name, data)
    sidecar.write_text(json.dumps(data), encoding="utf-8")


def test_a_sidecar_claiming_an_older_schema_than_the_file_is_not_believed(tmp_path: Path) -> None:
    """BUG (issue 12, 8): a sidecar saying schema 1, image 2.3.1 and a date in 2099, beside a file at
    schema 2, was listed with those facts and passed verification. Now the file's schema decides
    (even when the forger wrote a matching digest), the tag and date are not used, and --list says why."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=2)
    taken = take_snapshot(brain, "2.4.0", now=NOW)
    forge(taken, keep_digest=False, schema_version=1, image_tag="2.3.1", taken_at="2099-01-01T00:00:00+00:00")

    [(found, why)] = described_snapshots(brain)

    assert (found.schema_version, found.image_tag, found.checksum, found.by_hand) == (2, None, None, True)
    assert found.taken_at.year < 2099
    assert why is not None and "says schema 1, the file is at schema 2" in why
    assert [s.schema_version for s in list_snapshots(brain)] == [2]


def test_a_sidecar_dated_in_the_future_is_not_believed(tmp_path: Path) -> None:
    """Facts consistent with the file and their digest, but taken_at in 2099: ignored, with the reason."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=2)
    taken = take_snapshot(brain, "2.4.0", now=NOW)
    forge(taken, keep_digest=False, taken_at="2099-01-01T00:00:00+00:00")

    [(found, why)] = described_snapshots(brain)

    assert found.by_hand and found.image_tag is None and found.taken_at.year < 2099
    assert why is not None and "in the future" in why


@pytest.mark.parametrize(
    "fact, value", [("image_tag", "2.3.1"), ("taken_at", "2026-11-20T00:00:00+00:00"), ("checksum", "0" * 64)]
)
def test_a_fact_edited_by_hand_breaks_the_digest(tmp_path: Path, fact: str, value: str) -> None:
    """Facts the file cannot confirm (the tag that ran, an earlier time, the checksum) are covered by the
    digest: one edited by hand makes the whole sidecar disbelieved."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=2)
    taken = take_snapshot(brain, "2.4.0", now=NOW)
    forge(taken, **{fact: value})

    [(found, why)] = described_snapshots(brain)

    assert found.by_hand and found.image_tag is None and found.checksum is None
    assert why is not None and "do not match their digest" in why


def test_a_sidecar_moved_beside_another_file_is_not_believed(tmp_path: Path) -> None:
    """The digest names the file: a sidecar copied to another snapshot (same size, same schema) fails."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=2)
    first = take_snapshot(brain, "2.4.0", now=NOW - timedelta(hours=1))
    second = take_snapshot(brain, "2.4.0", now=NOW)
    shutil.copyfile(f"{first.path}.json", f"{second.path}.json")

    found = {s.path: why for s, why in described_snapshots(brain)}

    assert found[first.path] is None
    assert found[second.path] is not None and "digest" in found[second.path]


def test_a_damaged_file_keeps_its_sidecar_so_verify_names_the_checksum(tmp_path: Path) -> None:
    """A truncated file changed, not its sidecar: the sidecar is still believed and verify says the
    file no longer matches the checksum recorded when it was taken."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, rows=400)
    taken = take_snapshot(brain, "2.4.0", now=NOW)
    with taken.path.open("r+b") as handle:
        handle.truncate(taken.size // 2)
    [(found, why)] = described_snapshots(brain)
    assert (found, why) == (taken, None)
    problem = verify(found)
    assert problem is not None and "does not match the checksum" in problem


def test_a_sound_sidecar_is_believed_and_one_from_before_the_digest_too(tmp_path: Path) -> None:
    """rollbot's own sidecars hold up; sidecars written before the digest existed are checked against the file only."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=2)
    taken = take_snapshot(brain, "2.4.0", now=NOW)
    assert described_snapshots(brain) == [(taken, None)]
    sidecar = Path(f"{taken.path}.json")
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    del data["facts_digest"]
    sidecar.write_text(json.dumps(data), encoding="utf-8")
    assert described_snapshots(brain) == [(taken, None)]


# --- verifying -----------------------------------------------------------------------------------------


def test_verify_accepts_a_sound_snapshot(tmp_path: Path) -> None:
    """A fresh snapshot matches its checksum and passes the integrity check."""
    brain = brain_config(tmp_path)
    make_brain(brain.path)
    assert verify(take_snapshot(brain, "2.4.0", now=NOW)) is None


def test_verify_detects_a_checksum_mismatch(tmp_path: Path) -> None:
    """One changed byte (same size, still a valid database) is caught by the recorded checksum."""
    brain = brain_config(tmp_path)
    make_brain(brain.path)
    snapshot = take_snapshot(brain, "2.4.0", now=NOW)
    with closing(sqlite3.connect(snapshot.path)) as edit:
        edit.execute("UPDATE episodes SET content = 'tampered' WHERE id = 1")
        edit.commit()
    assert snapshot.path.stat().st_size == snapshot.size
    problem = verify(snapshot)
    assert problem is not None and "does not match the checksum" in problem


def test_verify_detects_a_truncated_snapshot(tmp_path: Path) -> None:
    """A truncated file fails, with a sidecar (checksum) and without one (integrity check)."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, rows=400)
    snapshot = take_snapshot(brain, "2.4.0", now=NOW)
    with snapshot.path.open("r+b") as handle:
        handle.truncate(snapshot.size // 2)
    problem = verify(snapshot)
    assert problem is not None and snapshot.path.name in problem

    Path(f"{snapshot.path}.json").unlink()
    [hand] = list_snapshots(brain)
    problem = verify(hand)
    assert problem is not None and "fails integrity_check" in problem


def test_verify_reports_a_missing_file(tmp_path: Path) -> None:
    """A snapshot deleted after it was listed is reported as missing, not as an exception."""
    snapshot = Snapshot(tmp_path / "gone.sqlite", NOW, 1, 10, "abc")
    assert verify(snapshot) == f"{tmp_path / 'gone.sqlite'} does not exist"


def test_snapshot_round_trips_through_to_dict(tmp_path: Path) -> None:
    """The journal stores snapshots as JSON: paths and times become strings, the rest stays."""
    brain = brain_config(tmp_path)
    make_brain(brain.path)
    snapshot = take_snapshot(brain, "2.4.0", now=NOW)
    data = json.loads(json.dumps(snapshot.to_dict()))
    assert data["path"] == str(snapshot.path) and data["taken_at"] == NOW.isoformat()
    assert snapshot.age_seconds(NOW + timedelta(minutes=5)) == 300
    assert set(ENGINE_TABLES) <= set(brain_contents(snapshot.path))
