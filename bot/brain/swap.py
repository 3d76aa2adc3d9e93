"""Swapping a brain for a snapshot so that the brain in place is always whole.

Downtime must not grow with the brain's size, so the copy happens before the Engine stops:
`stage` copies the snapshot beside the brain (same filesystem) and verifies the copy. After the
drain-stop, `swap` only renames, in an order where every intermediate state leaves, at the
brain's path, either the complete old brain or the complete snapshot — never nothing, never a
mix of one's file with the other's WAL:

1. checkpoint the old brain in place, folding its own `-wal` into it (SQLite's crash-safe
   checkpoint), so the old brain is one self-contained file;
2. hard-link it into the forensic folder — the forensic copy exists, the brain is still there;
3. move its (now empty) `-wal`/`-shm`/`-journal` files into the forensic folder;
4. rename the staged file over the brain's name (atomic);
5. fsync both folders.

Nothing is copied and nothing is deleted: the old brain's file lives on under the forensic name.
`put_back` undoes a swap the same way, moving the restored brain aside as well.

The restored brain gets the old brain's owner and mode (an Engine running as uid 1000 on a
0600 brain must find exactly that again, not a root-owned 0644 file it opens read-only): the
staged copy is created 0600, then given them, and the swap gives them again just before the
rename. Where rollbot may not chown, staging fails before the drain-stop and says so, and
`ownership_problem` lets preflight say it first; ownership is never changed silently. The
original comes back by its own inode, so `put_back` keeps its owner and mode by construction.
The forensic folder is 0700: it holds the brain's data.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from bot.brain.facts import BrainError, check_integrity, sha256
from bot.brain.snapshots import Snapshot, brain_lock
from bot.files import fsync_directory, fsync_file
from bot.running.failpoints import failpoint

SIDECARS = ("-wal", "-shm", "-journal")
FORENSIC_FOLDER = "rollbot-forensic"


@dataclass(frozen=True)
class Staged:
    path: Path
    inode: int
    checksum: str
    snapshot: Path


@dataclass(frozen=True)
class Swapped:
    forensic_dir: Path
    forensic_brain: Path
    original_inode: int
    staged_inode: int
    moved_aside: tuple[str, ...]


def staged_path(brain: Path, run_id: str) -> Path:
    return brain.with_name(f".{brain.name}.rollbot-staged-{run_id}")


def forensic_dir(brain: Path, run_id: str) -> Path:
    return brain.parent / FORENSIC_FOLDER / run_id


def stage(snapshot: Snapshot, brain: Path, run_id: str) -> Staged:
    """Copy the snapshot beside the brain and prove the copy is the snapshot, byte for byte.

    A snapshot rollbot took has a recorded checksum, which preflight verified along with the
    integrity check: a copy with that checksum is those very bytes, so it is not checked again.
    A hand-made snapshot has no recorded checksum, so its copy gets the integrity check."""
    with brain_lock(brain, f"the brain restore of run {run_id} is staging its snapshot"):
        return _stage(snapshot, brain, run_id)


def _stage(snapshot: Snapshot, brain: Path, run_id: str) -> Staged:
    destination = staged_path(brain, run_id)
    expected = snapshot.checksum or sha256(snapshot.path)
    destination.unlink(missing_ok=True)  # an earlier attempt's copy: created again, private from the start
    os.close(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    shutil.copyfile(snapshot.path, destination)
    fsync_file(destination)
    actual = sha256(destination)
    if actual != expected:
        destination.unlink(missing_ok=True)
        raise BrainError(f"the staged copy of {snapshot.path.name} does not match its checksum")
    if snapshot.checksum is None:
        pragma, result = check_integrity(destination)
        if result != "ok":
            destination.unlink(missing_ok=True)
            raise BrainError(f"the staged copy of {snapshot.path.name} fails {pragma}: {result[:200]}")
    if brain.is_file():
        try:
            _owned_like(destination, brain)
        except BrainError:
            destination.unlink(missing_ok=True)
            raise
    return Staged(destination, destination.stat().st_ino, actual, snapshot.path)


def ownership_problem(brain: Path) -> str | None:
    """None when a file rollbot creates beside the brain can be given the brain's owner; otherwise why not."""
    if not brain.is_file():
        return None
    facts = brain.stat()
    groups = {os.getegid(), *os.getgroups()}
    if os.geteuid() == 0 or (os.geteuid() == facts.st_uid and facts.st_gid in groups):
        return None
    return (
        f"{brain} is owned by uid {facts.st_uid} gid {facts.st_gid} and rollbot runs as uid {os.geteuid()}: "
        "a restored brain could not be given that owner; run rollbot as root or as the brain's owner"
    )


def _owned_like(path: Path, brain: Path) -> None:
    """Give `path` the brain's owner, group and mode, or say plainly that rollbot may not."""
    facts = brain.stat()
    try:
        if (path.stat().st_uid, path.stat().st_gid) != (facts.st_uid, facts.st_gid):
            os.chown(path, facts.st_uid, facts.st_gid)
        os.chmod(path, stat.S_IMODE(facts.st_mode))
    except PermissionError:
        raise BrainError(ownership_problem(brain) or f"cannot give {path.name} the owner and mode of {brain}") from None


def discard_staged(brain: Path, run_id: str) -> None:
    """The staged file is only a copy of a snapshot that still exists; removing it loses nothing."""
    staged_path(brain, run_id).unlink(missing_ok=True)


def prepare_swap(brain: Path, staged: Staged, forensic: Path) -> Swapped:
    """Everything a swap will do, known before it starts, so a crash at any point can be read back."""
    if not staged.path.is_file() or staged.path.stat().st_ino != staged.inode:
        raise BrainError(f"the staged snapshot {staged.path.name} is missing or was replaced")
    if not brain.is_file():
        raise BrainError(f"{brain} is missing; there is no brain to move aside")
    return Swapped(forensic, forensic / brain.name, brain.stat().st_ino, staged.inode, ())


def swap(brain: Path, staged: Staged, plan: Swapped) -> Swapped:
    """Put the staged snapshot in place of the (stopped) brain; the old brain goes to the forensic folder.

    Safe to run again after a crash at any point of an earlier attempt (a resumed run): a
    link already made is kept, sidecars already moved are not looked for, and a rename that
    already happened is only made durable. The brain's lock is held throughout: a snapshot in
    flight would keep the WAL from being checkpointed."""
    with brain_lock(brain, f"a brain restore is swapping the brain ({plan.forensic_dir.name})"):
        return _swap(brain, staged, plan)


def _swap(brain: Path, staged: Staged, plan: Swapped) -> Swapped:
    if brain_in_place(brain, plan.original_inode, plan.staged_inode) == "snapshot":
        _make_durable(brain, plan.forensic_dir)
        return Swapped(plan.forensic_dir, plan.forensic_brain, plan.original_inode, plan.staged_inode, (brain.name,))
    failpoint("swap:before-checkpoint")
    _checkpoint(brain)
    failpoint("swap:after-checkpoint")
    _owned_like(staged.path, brain)
    _private_folder(plan.forensic_dir)
    _link_once(brain, plan.forensic_brain)
    fsync_directory(plan.forensic_dir)
    failpoint("swap:after-link")
    moved = _move_sidecars(brain, plan.forensic_dir, prefix="")
    failpoint("swap:after-sidecars")
    os.rename(staged.path, brain)
    failpoint("swap:after-rename")
    _make_durable(brain, plan.forensic_dir)
    failpoint("swap:after-fsync")
    return Swapped(plan.forensic_dir, plan.forensic_brain, plan.original_inode, plan.staged_inode, (brain.name, *moved))


def _private_folder(folder: Path) -> None:
    """The forensic folder (and the folder of all of them) readable by the owner only."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for each in (folder, folder.parent):
        os.chmod(each, 0o700)


def _link_once(brain: Path, forensic_brain: Path) -> None:
    """Hard-link the brain into the forensic folder, unless an earlier attempt already did."""
    if forensic_brain.exists():
        if forensic_brain.stat().st_ino != brain.stat().st_ino:
            raise BrainError(f"{forensic_brain} exists and is not {brain}; refusing to swap over it")
        return
    os.link(brain, forensic_brain)


def _make_durable(brain: Path, forensic: Path) -> None:
    fsync_directory(brain.parent)
    fsync_directory(forensic)


def put_back(brain: Path, swapped: Swapped) -> None:
    """Return the original brain to its place; the brain that was there is moved aside too."""
    if brain.exists() and brain.stat().st_ino == swapped.original_inode:
        return
    if not swapped.forensic_brain.exists():
        raise BrainError(f"the original brain is neither at {brain} nor at {swapped.forensic_brain}")
    if brain.exists():
        _checkpoint(brain)
        os.link(brain, swapped.forensic_dir / f"restored-then-replaced-{brain.name}")
        _move_sidecars(brain, swapped.forensic_dir, prefix="restored-then-replaced-")
    incoming = brain.with_name(f".{brain.name}.rollbot-putback")
    incoming.unlink(missing_ok=True)
    os.link(swapped.forensic_brain, incoming)
    os.rename(incoming, brain)
    fsync_directory(brain.parent)
    fsync_directory(swapped.forensic_dir)


def brain_in_place(brain: Path, original_inode: int, staged_inode: int) -> str:
    """Which brain sits at the brain's path, told by inode: for reports after a crash."""
    if not brain.exists():
        return "missing"
    inode = brain.stat().st_ino
    if inode == original_inode:
        return "original"
    if inode == staged_inode:
        return "snapshot"
    return "other"


def hard_links_work(folder: Path) -> str | None:
    """None when the swap can work in `folder`; otherwise why not.

    The probe's names are unique (mkstemp), so preflights running at once in the same folder
    (two plans, two replicas) do not trip over each other's probe and refuse falsely."""
    probe: Path | None = None
    linked: Path | None = None
    try:
        handle, name = tempfile.mkstemp(prefix=".rollbot-link-probe-", dir=folder)
        os.close(handle)
        probe = Path(name)
        linked = probe.with_name(probe.name + ".link")
        os.link(probe, linked)
        return None
    except OSError as error:
        return f"{folder} does not allow hard links ({error.strerror}); the brain cannot be swapped safely there"
    finally:
        for path in (linked, probe):
            if path is not None:
                path.unlink(missing_ok=True)


def _checkpoint(brain: Path) -> None:
    """Fold the brain's own WAL (or hot journal) into it, so the file alone is the whole brain."""
    try:
        with closing(sqlite3.connect(brain, timeout=10)) as connection:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if mode == "wal":
                busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if busy:
                    raise BrainError(
                        f"{brain} is still in use: its WAL could not be checkpointed (is the Engine stopped?)"
                    )
    except sqlite3.Error as error:
        raise BrainError(f"{brain}: cannot checkpoint before the swap: {error}") from None
    wal = Path(f"{brain}-wal")
    if wal.exists() and wal.stat().st_size:
        raise BrainError(f"{brain}: its WAL still holds data after the checkpoint; refusing to swap")


def _move_sidecars(brain: Path, forensic: Path, prefix: str) -> tuple[str, ...]:
    moved = []
    for suffix in SIDECARS:
        sidecar = Path(f"{brain}{suffix}")
        if sidecar.exists():
            os.rename(sidecar, forensic / f"{prefix}{sidecar.name}")
            moved.append(sidecar.name)
    return tuple(moved)
