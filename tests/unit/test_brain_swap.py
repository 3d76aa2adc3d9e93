"""The brain swap on real files: staged copy, renames only, the original kept whole, crash-safe at every point."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bot.brain.swap
from bot.brain.facts import BrainError, sha256
from bot.brain.snapshots import Snapshot, take_snapshot
from bot.brain.swap import (
    FORENSIC_FOLDER,
    Swapped,
    brain_in_place,
    discard_staged,
    forensic_dir,
    hard_links_work,
    ownership_problem,
    prepare_swap,
    put_back,
    stage,
    staged_path,
    swap,
)
from bot.config import BrainConfig
from bot.running.failpoints import ENV_VAR

from .fakes import brain_config, brain_contents, leave_wal, make_brain, upgrade_brain

RUN = "run1"
WAL_ONLY_ROW = "INSERT INTO episodes (created_at, content) VALUES ('2026-11-26T04:00:00Z', 'only in the WAL')"
# Where each failpoint sits relative to the atomic rename: the brain in place after a SIGKILL there.
EXPECTED_AFTER_KILL = {
    "swap:before-checkpoint": "original",
    "swap:after-checkpoint": "original",
    "swap:after-link": "original",
    "swap:after-sidecars": "original",
    "swap:after-rename": "snapshot",
    "swap:after-fsync": "snapshot",
}


@dataclasses.dataclass
class Scene:
    brain: BrainConfig
    snapshot: Snapshot
    original: dict[str, object]
    restored: dict[str, object]
    original_inode: int


def scene(tmp_path: Path, wal_data: bool = True) -> Scene:
    """A snapshot at schema 1, then the bad window: schema 2, a new table, new rows — and, like an
    Engine that was killed, one committed row still only in the brain's -wal."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    snapshot = take_snapshot(brain, "2.3.1", now=datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    upgrade_brain(brain.path, schema=2)
    if wal_data:
        leave_wal(brain.path, WAL_ONLY_ROW)
    original = brain_contents(brain.path)
    restored = brain_contents(snapshot.path)
    assert original != restored
    return Scene(brain, snapshot, original, restored, brain.path.stat().st_ino)


def raw_file_has_wal_row(path: Path) -> bool:
    """Whether the database file alone (ignoring any -wal) holds the WAL-only row."""
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as raw:
        return raw.execute("SELECT count(*) FROM episodes WHERE content = 'only in the WAL'").fetchone()[0] > 0


def wal_with_data(path: Path) -> bool:
    wal = Path(f"{path}-wal")
    return wal.exists() and wal.stat().st_size > 0


# --- stage ---------------------------------------------------------------------------------------------


def test_stage_copies_the_snapshot_beside_the_brain_and_verifies_it(tmp_path: Path) -> None:
    """The staged file is a byte-for-byte copy in the brain's folder (same filesystem, so the swap is a rename)."""
    s = scene(tmp_path, wal_data=False)
    staged = stage(s.snapshot, s.brain.path, RUN)
    assert staged.path == staged_path(s.brain.path, RUN) and staged.path.parent == s.brain.path.parent
    assert staged.path.name.startswith("."), "hidden, so it is never taken for a snapshot"
    assert staged.path.read_bytes() == s.snapshot.path.read_bytes()
    assert (staged.checksum, staged.inode, staged.snapshot) == (
        s.snapshot.checksum,
        staged.path.stat().st_ino,
        s.snapshot.path,
    )
    assert brain_contents(s.brain.path) == s.original, "staging does not touch the brain"


def test_stage_refuses_a_copy_that_does_not_match_the_checksum(tmp_path: Path) -> None:
    """The snapshot changed since it was verified: BrainError, and no staged file is left behind."""
    s = scene(tmp_path, wal_data=False)
    changed = dataclasses.replace(s.snapshot, checksum="0" * 64)
    with pytest.raises(BrainError, match="does not match its checksum"):
        stage(changed, s.brain.path, RUN)
    assert not staged_path(s.brain.path, RUN).exists()


def test_stage_refuses_a_copy_that_fails_the_integrity_check(tmp_path: Path) -> None:
    """A hand-made snapshot (no checksum) that is damaged is caught by the integrity check of the copy."""
    s = scene(tmp_path, wal_data=False)
    damaged = tmp_path / "brain-pre-upgrade.db"
    shutil.copyfile(s.snapshot.path, damaged)
    with damaged.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff" * 4096)
    by_hand = Snapshot(damaged, s.snapshot.taken_at, 1, damaged.stat().st_size, None, by_hand=True)
    with pytest.raises(BrainError, match="fails integrity_check"):
        stage(by_hand, s.brain.path, RUN)
    assert not staged_path(s.brain.path, RUN).exists()


def test_discard_staged_removes_only_the_staged_copy(tmp_path: Path) -> None:
    """The staged file is a copy of a snapshot that still exists: removing it loses nothing."""
    s = scene(tmp_path, wal_data=False)
    stage(s.snapshot, s.brain.path, RUN)
    discard_staged(s.brain.path, RUN)
    discard_staged(s.brain.path, RUN)  # twice is fine
    assert not staged_path(s.brain.path, RUN).exists()
    assert s.snapshot.path.is_file() and brain_contents(s.brain.path) == s.original


# --- prepare_swap --------------------------------------------------------------------------------------


def test_prepare_swap_knows_everything_before_it_starts(tmp_path: Path) -> None:
    """The inodes and the forensic path are fixed before any rename, for the journal to record."""
    s = scene(tmp_path, wal_data=False)
    staged = stage(s.snapshot, s.brain.path, RUN)
    planned = prepare_swap(s.brain.path, staged, forensic_dir(s.brain.path, RUN))
    assert planned.forensic_dir == s.brain.path.parent / FORENSIC_FOLDER / RUN
    assert planned.forensic_brain == planned.forensic_dir / s.brain.path.name
    assert (planned.original_inode, planned.staged_inode) == (s.original_inode, staged.inode)
    assert not planned.forensic_dir.exists(), "preparing changes nothing"


def test_prepare_swap_refuses_a_replaced_staged_file_or_a_missing_brain(tmp_path: Path) -> None:
    """A staged file that is not the one verified, or no brain to move aside, stops the swap before it begins."""
    s = scene(tmp_path, wal_data=False)
    staged = stage(s.snapshot, s.brain.path, RUN)
    impostor = tmp_path / "impostor"
    shutil.copyfile(staged.path, impostor)
    os.replace(impostor, staged.path)
    with pytest.raises(BrainError, match="missing or was replaced"):
        prepare_swap(s.brain.path, staged, forensic_dir(s.brain.path, RUN))

    fresh = stage(s.snapshot, s.brain.path, "run2")
    moved = tmp_path / "elsewhere.sqlite"
    os.rename(s.brain.path, moved)
    with pytest.raises(BrainError, match="no brain to move aside"):
        prepare_swap(s.brain.path, fresh, forensic_dir(s.brain.path, "run2"))


# --- swap ----------------------------------------------------------------------------------------------


def test_swap_puts_the_snapshot_in_place_and_keeps_the_original_whole(tmp_path: Path) -> None:
    """A stopped WAL brain whose -wal still holds committed rows: after the swap the snapshot is in place,
    and the forensic folder holds the original inode with every row, the WAL's included."""
    s = scene(tmp_path)
    assert wal_with_data(s.brain.path) and not raw_file_has_wal_row(s.brain.path), "the row is only in the WAL"
    staged = stage(s.snapshot, s.brain.path, RUN)

    swapped = swap(s.brain.path, staged, prepare_swap(s.brain.path, staged, forensic_dir(s.brain.path, RUN)))

    assert brain_contents(s.brain.path) == s.restored
    assert s.brain.path.stat().st_ino == staged.inode
    assert swapped.forensic_brain.stat().st_ino == s.original_inode, "the original file was renamed, not copied"
    assert raw_file_has_wal_row(swapped.forensic_brain), "the WAL was folded into the forensic copy"
    assert brain_contents(swapped.forensic_brain) == s.original
    assert not wal_with_data(s.brain.path), "no WAL of the old brain beside the new one"
    assert not staged.path.exists()
    assert swapped.moved_aside[0] == s.brain.path.name
    assert (swapped.original_inode, swapped.staged_inode) == (s.original_inode, staged.inode)
    assert sha256(s.snapshot.path) == s.snapshot.checksum, "the snapshot itself is untouched"


def test_swap_rolls_back_a_hot_journal_before_moving_the_brain(tmp_path: Path) -> None:
    """A rollback-journal brain killed mid-transaction has half-written pages in the file: the swap must
    roll them back first, so the forensic copy is the last committed state, not a mix."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, rows=300)
    with closing(sqlite3.connect(brain.path)) as convert:
        convert.execute("PRAGMA journal_mode=DELETE")
    snapshot = take_snapshot(brain, "2.3.1")
    committed = brain_contents(brain.path)
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import os, sqlite3, sys\n"
                "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "c.execute('PRAGMA cache_size = 2')\n"
                "c.execute('BEGIN')\n"
                "c.execute(\"UPDATE episodes SET content = 'half-done' || hex(randomblob(200))\")\n"
                "os._exit(0)\n"
            ),
            str(brain.path),
        ],
        check=True,
        timeout=60,
    )
    assert Path(f"{brain.path}-journal").stat().st_size > 0, "a hot journal was left"

    staged = stage(snapshot, brain.path, RUN)
    swapped = swap(brain.path, staged, prepare_swap(brain.path, staged, forensic_dir(brain.path, RUN)))

    assert brain_contents(swapped.forensic_brain) == committed
    assert not Path(f"{brain.path}-journal").exists()
    assert brain_contents(brain.path) == brain_contents(snapshot.path)


# --- put_back ------------------------------------------------------------------------------------------


def test_put_back_returns_the_original_and_keeps_the_restored_brain_aside(tmp_path: Path) -> None:
    """Undoing a swap: the original inode is at the brain's path again, the restored one is kept as
    restored-then-replaced-*, and nothing is deleted."""
    s = scene(tmp_path)
    staged = stage(s.snapshot, s.brain.path, RUN)
    swapped = swap(s.brain.path, staged, prepare_swap(s.brain.path, staged, forensic_dir(s.brain.path, RUN)))

    put_back(s.brain.path, swapped)

    assert s.brain.path.stat().st_ino == s.original_inode
    assert brain_contents(s.brain.path) == s.original
    aside = swapped.forensic_dir / f"restored-then-replaced-{s.brain.path.name}"
    assert aside.stat().st_ino == staged.inode
    assert brain_contents(aside) == s.restored
    assert not Path(f"{s.brain.path}.rollbot-putback").exists()
    assert not (s.brain.path.parent / f".{s.brain.path.name}.rollbot-putback").exists()

    put_back(s.brain.path, swapped)  # a second call finds the original in place and does nothing
    assert s.brain.path.stat().st_ino == s.original_inode


def test_put_back_keeps_what_the_engine_wrote_to_the_restored_brain(tmp_path: Path) -> None:
    """If the old version ran on the restored brain and left rows in its WAL, those rows go aside too."""
    s = scene(tmp_path, wal_data=False)
    staged = stage(s.snapshot, s.brain.path, RUN)
    swapped = swap(s.brain.path, staged, prepare_swap(s.brain.path, staged, forensic_dir(s.brain.path, RUN)))
    leave_wal(
        s.brain.path,
        "PRAGMA journal_mode=WAL",
        "INSERT INTO feedback (created_at, content) VALUES ('after', 'written on the restored brain')",
    )
    written = brain_contents(s.brain.path)

    put_back(s.brain.path, swapped)

    assert brain_contents(s.brain.path) == s.original
    assert brain_contents(swapped.forensic_dir / f"restored-then-replaced-{s.brain.path.name}") == written
    assert not wal_with_data(s.brain.path)


def test_put_back_without_the_original_anywhere_is_a_brain_error(tmp_path: Path) -> None:
    """When the original is neither in place nor in the forensic folder, say so; do not move anything."""
    s = scene(tmp_path, wal_data=False)
    lost = Swapped(tmp_path / "nowhere", tmp_path / "nowhere" / "brain.sqlite", s.original_inode + 10**9, 1, ())
    with pytest.raises(BrainError, match="neither at"):
        put_back(s.brain.path, lost)
    assert brain_contents(s.brain.path) == s.original


# --- which brain is in place ---------------------------------------------------------------------------


def test_brain_in_place_tells_the_brains_apart_by_inode(tmp_path: Path) -> None:
    """After a crash, the report says original, snapshot, missing or other — from the inodes alone."""
    s = scene(tmp_path, wal_data=False)
    staged = stage(s.snapshot, s.brain.path, RUN)
    assert brain_in_place(s.brain.path, s.original_inode, staged.inode) == "original"
    swapped = swap(s.brain.path, staged, prepare_swap(s.brain.path, staged, forensic_dir(s.brain.path, RUN)))
    assert brain_in_place(s.brain.path, s.original_inode, staged.inode) == "snapshot"
    os.rename(s.brain.path, tmp_path / "away")
    assert brain_in_place(s.brain.path, s.original_inode, staged.inode) == "missing"
    shutil.copyfile(swapped.forensic_brain, s.brain.path)
    assert brain_in_place(s.brain.path, s.original_inode, staged.inode) == "other", "a copy is not the original"


def test_hard_links_work_in_an_ordinary_folder_and_leave_no_probe(tmp_path: Path) -> None:
    """The swap needs hard links: an ordinary folder allows them and the probe files are cleaned up."""
    assert hard_links_work(tmp_path) is None
    assert list(tmp_path.iterdir()) == []
    problem = hard_links_work(tmp_path / "missing")
    assert problem is not None and "cannot be swapped safely" in problem


def test_concurrent_hard_link_probes_in_one_folder_never_refuse_falsely(tmp_path: Path) -> None:
    """Preflights of two plans (or two replicas) probe the same brain folder at once: with fixed
    probe names one removed the other's file mid-probe and the plan was refused (338 of 600)."""
    start = threading.Barrier(8)

    def probes(_: int) -> list[str | None]:
        start.wait()
        return [hard_links_work(tmp_path) for _ in range(75)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = [answer for batch in pool.map(probes, range(8)) for answer in batch]
    assert len(answers) == 600
    assert [answer for answer in answers if answer is not None] == []
    assert list(tmp_path.iterdir()) == [], "every probe cleaned up after itself"


# --- SIGKILL at every failpoint ------------------------------------------------------------------------

SWAP_SCRIPT = """
import json, sys
from pathlib import Path
from bot.brain.swap import forensic_dir, prepare_swap, stage, swap
from bot.brain.facts import BrainError, sha256
from bot.config import BrainConfig
from bot.brain.snapshots import list_snapshots

brain = BrainConfig(path=Path(sys.argv[1]), snapshots_dir=Path(sys.argv[2]))
[snapshot] = list_snapshots(brain)
staged = stage(snapshot, brain.path, "run1")
planned = prepare_swap(brain.path, staged, forensic_dir(brain.path, "run1"))
print(json.dumps({"original_inode": planned.original_inode, "staged_inode": planned.staged_inode}), flush=True)
swap(brain.path, staged, planned)
print("swapped", flush=True)
"""


def test_every_failpoint_of_the_swap_is_covered() -> None:
    """A new failpoint in brain_swap.py must be added to the crash test below with its expected brain."""
    source = Path(bot.brain.swap.__file__).read_text(encoding="utf-8")
    assert set(re.findall(r'failpoint\("([^"]+)"\)', source)) == set(EXPECTED_AFTER_KILL)


@pytest.mark.parametrize("point", [*EXPECTED_AFTER_KILL, None], ids=[*EXPECTED_AFTER_KILL, "no-failpoint"])
def test_sigkill_during_the_swap_leaves_one_whole_brain(tmp_path: Path, point: str | None) -> None:
    """Killed at any point of the swap, the brain at the brain's path is exactly the original (WAL rows
    included) or exactly the snapshot — never missing, never mixed — and put_back recovers the original."""
    s = scene(tmp_path)
    env = {key: value for key, value in os.environ.items() if key != ENV_VAR}
    if point is not None:
        env[ENV_VAR] = point
    done = subprocess.run(
        [sys.executable, "-c", SWAP_SCRIPT, str(s.brain.path), str(s.brain.snapshots_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    expected = EXPECTED_AFTER_KILL.get(point or "", "snapshot")
    if point is None:
        assert done.returncode == 0 and done.stdout.endswith("swapped\n"), done.stderr
    else:
        assert done.returncode == -signal.SIGKILL, done.stderr
        assert "swapped" not in done.stdout
    inodes = json.loads(done.stdout.splitlines()[0])
    assert inodes["original_inode"] == s.original_inode

    assert brain_contents(s.brain.path) == (s.original if expected == "original" else s.restored)
    assert brain_in_place(s.brain.path, inodes["original_inode"], inodes["staged_inode"]) == expected
    forensic = forensic_dir(s.brain.path, RUN) / s.brain.path.name
    if expected == "snapshot":
        assert not wal_with_data(s.brain.path), "the old brain's WAL must not sit beside the snapshot"
        assert brain_contents(forensic) == s.original
    assert s.snapshot.path.is_file(), "the snapshot is never consumed"

    put_back(s.brain.path, Swapped(forensic.parent, forensic, inodes["original_inode"], inodes["staged_inode"], ()))
    assert s.brain.path.stat().st_ino == s.original_inode
    assert brain_contents(s.brain.path) == s.original


def test_a_failpoint_fires_only_when_named() -> None:
    """Another armed name, or none, lets the process go on; the named one kills it on the spot."""
    script = "from bot.running.failpoints import failpoint\nfailpoint('swap:after-link')\nprint('alive', flush=True)\n"
    env = {key: value for key, value in os.environ.items() if key != ENV_VAR}
    unarmed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    other = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, ENV_VAR: "swap:after-rename,x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    armed = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, ENV_VAR: "x,swap:after-link"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (unarmed.returncode, unarmed.stdout) == (0, "alive\n")
    assert (other.returncode, other.stdout) == (0, "alive\n")
    assert (armed.returncode, armed.stdout) == (-signal.SIGKILL, "")


# --- owner and mode --------------------------------------------------------------------------------------

ENGINE_UID = 1000


def owned_by_the_engine(s: Scene) -> None:
    """The Engine's brain as a real deployment has it: uid/gid 1000, mode 0600."""
    os.chown(s.brain.path, ENGINE_UID, ENGINE_UID)
    os.chmod(s.brain.path, 0o600)


def owner_and_mode(path: Path) -> tuple[int, int, int]:
    facts = path.stat()
    return facts.st_uid, facts.st_gid, facts.st_mode & 0o7777


@pytest.fixture
def root() -> None:
    """Ownership is only testable as root (chown to another uid, a process started as another uid).
    CI and `.ci/setup.sh` run as root; elsewhere this fails loudly rather than skipping."""
    if os.geteuid() != 0:
        pytest.fail("this test must run as root: it gives files to another uid", pytrace=False)


@pytest.mark.usefixtures("root")
def test_a_restored_brain_keeps_the_owner_and_mode_of_the_brain_it_replaces(tmp_path: Path) -> None:
    """BUG (issue 12, 6): a brain at 0600, uid 1000 came back 0644 owned by rollbot's user after a
    restore, and an Engine running as uid 1000 then got "readonly database". The staged copy is private
    from its creation, then takes the brain's owner and mode; the swap keeps them; so does a put-back."""
    s = scene(tmp_path)
    owned_by_the_engine(s)

    staged = stage(s.snapshot, s.brain.path, RUN)
    assert owner_and_mode(staged.path) == (ENGINE_UID, ENGINE_UID, 0o600)
    swapped = swap(s.brain.path, staged, prepare_swap(s.brain.path, staged, forensic_dir(s.brain.path, RUN)))

    assert owner_and_mode(s.brain.path) == (ENGINE_UID, ENGINE_UID, 0o600)
    assert brain_contents(s.brain.path) == s.restored
    assert owner_and_mode(swapped.forensic_dir)[2] == 0o700 and owner_and_mode(swapped.forensic_dir.parent)[2] == 0o700
    put_back(s.brain.path, swapped)
    assert owner_and_mode(s.brain.path) == (ENGINE_UID, ENGINE_UID, 0o600)
    assert brain_contents(s.brain.path) == s.original


def test_a_restore_keeps_a_group_readable_mode_too(tmp_path: Path) -> None:
    """The mode is the brain's, whatever it is: 0640 stays 0640 (rollbot's own user and group here)."""
    s = scene(tmp_path, wal_data=False)
    os.chmod(s.brain.path, 0o640)
    staged = stage(s.snapshot, s.brain.path, RUN)
    swap(s.brain.path, staged, prepare_swap(s.brain.path, staged, forensic_dir(s.brain.path, RUN)))
    assert owner_and_mode(s.brain.path)[2] == 0o640


def attempt_stage(s: Scene) -> list[str]:
    problem = ownership_problem(s.brain.path)
    try:
        stage(s.snapshot, s.brain.path, RUN)
        outcome = "staged"
    except BrainError as error:
        outcome = f"refused: {error}"
    leftover = "left behind" if staged_path(s.brain.path, RUN).exists() else "nothing left"
    return [str(problem), outcome, leftover]


def as_engine_user(work: Callable[[], list[str]]) -> list[str]:
    """Run `work` in a forked child that dropped to uid/gid 1000 (rollbot not running as root)."""
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.setgroups([])
            os.setgid(ENGINE_UID)
            os.setuid(ENGINE_UID)
            os.write(writer, json.dumps(work()).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as answer:
        text = answer.read()
    os.waitpid(child, 0)
    return json.loads(text)


@pytest.mark.usefixtures("root")
def test_staging_for_a_brain_rollbot_may_not_chown_fails_before_anything_and_says_so(tmp_path: Path) -> None:
    """rollbot running as uid 1000 cannot give a copy root's ownership: staging fails (before the
    drain-stop) naming both uids, leaves no staged file, and preflight's ownership_problem says it first."""
    folder = Path(tempfile.mkdtemp(prefix="rollbot-owner-"))  # outside pytest's 0700 tmp folder
    try:
        os.chmod(folder, 0o777)
        s = scene(folder, wal_data=False)
        for path in (s.brain.path.parent, s.snapshot.path.parent):
            os.chmod(path, 0o777)
        os.chmod(s.snapshot.path, 0o644)
        problem, refusal, leftover = as_engine_user(lambda: attempt_stage(s))
        assert "owned by uid 0" in problem and "rollbot runs as uid 1000" in problem
        assert refusal.startswith("refused:") and "owned by uid 0" in refusal
        assert leftover == "nothing left"
        assert owner_and_mode(s.brain.path)[0] == 0
    finally:
        shutil.rmtree(folder)
