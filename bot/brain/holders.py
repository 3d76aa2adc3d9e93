"""Who else holds the brain: the proof that only the Engine has it before it is swapped.

A swap renames files under the brain's name. Any other process that has the old brain open
keeps writing to the old file, which becomes the forensic copy, while the Engine starts on the
snapshot: the brain is split without a word. SQLite cannot tell: an idle connection holds no
lock, so `wal_checkpoint(TRUNCATE)` passes. So rollbot looks for holders three ways:

- Docker: a running container that mounts the brain's folder, a parent of it, the brain file or
  its `-wal`/`-shm` (bind mounts by their host path, named volumes by their mountpoint). Such a
  container can open the brain at any moment, so it holds it even when idle (a one-off of the
  service sharing `./data` included).
- /proc: a process of this host whose open files include the brain or its sidecars, compared by
  device and inode (a process in a container shows its own path for the same file). Processes
  rollbot may not read are not seen; the check says how many.
- SQLite, after the drain-stop: an exclusive lock in exclusive locking mode, which an open WAL
  connection refuses even when idle.

Before the drain-stop the service's own containers (the ones the run stops) and rollbot itself
are not holders; after it, only rollbot is allowed.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Collection, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bot.ports import DockerFacts, RunningMounts

BRAIN_SIDECARS = ("-wal", "-shm", "-journal")
CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
LOCK_TIMEOUT_SECONDS = 1.0
SHOWN_COMMAND = 120


@dataclass(frozen=True)
class Holder:
    """Something other than the Engine that holds the brain, said so a person can find it."""

    what: str  # "container NAME", "process PID (COMMAND)", or the lock test's finding
    how: str  # what makes it a holder
    container_id: str | None = None  # the container it is, or runs in

    def describe(self) -> str:
        return f"{self.what} {self.how}"


@dataclass(frozen=True)
class ProcessScan:
    """The processes that hold the brain, and how many processes could not be read."""

    holders: tuple[Holder, ...]
    unreadable: int


def brain_files(brain: Path) -> list[Path]:
    """The brain and whichever of its sidecars exist: each is the brain to a process that has it open."""
    return [brain] + [Path(f"{brain}{suffix}") for suffix in BRAIN_SIDECARS if Path(f"{brain}{suffix}").exists()]


def containers_holding(brain: Path, running: Iterable[RunningMounts], own: Collection[str] = ()) -> list[Holder]:
    """Running containers, other than `own` (ids or id prefixes), with a mount that reaches the brain."""
    files = [Path(os.path.realpath(path)) for path in [brain] + [Path(f"{brain}{s}") for s in BRAIN_SIDECARS]]
    holders = []
    for container in running:
        if _is_own(container.id, own):
            continue
        for mount in container.mounts:
            if mount.source and _reaches(Path(os.path.realpath(mount.source)), files):
                holders.append(
                    Holder(f"container {container.name}", f"mounts {mount.source} at {mount.destination}", container.id)
                )
                break
    return holders


def _reaches(source: Path, files: list[Path]) -> bool:
    """A mount of the file itself, of its folder or of any parent gives the container the brain."""
    return any(source == file or source in file.parents for file in files)


def _is_own(container_id: str, own: Collection[str]) -> bool:
    return any(container_id.startswith(mine) or mine.startswith(container_id) for mine in own if mine)


def processes_holding(
    brain: Path,
    excluded_pids: Collection[int] = (),
    own_containers: Collection[str] = (),
    names: dict[str, str] | None = None,
    proc: Path = Path("/proc"),
) -> ProcessScan:
    """Processes of this host with the brain or a sidecar open, found by device and inode.

    rollbot itself, `excluded_pids` and processes in `own_containers` (by the container id in
    their cgroup) are not holders. A process that ends while it is read is simply gone.
    `names` gives container names by id, to say which container a process runs in."""
    wanted = _identities(brain_files(brain))
    if not wanted:
        return ProcessScan((), 0)
    skip = {os.getpid(), *excluded_pids}
    holders, unreadable = [], 0
    for entry in _pids(proc):
        if entry in skip:
            continue
        found = _open_brain_file(proc / str(entry), wanted)
        if found is None:
            unreadable += 1
            continue
        if not found:
            continue
        container = _container_of(proc / str(entry))
        if container is not None and _is_own(container, own_containers):
            continue
        shown = (names or {}).get(container, container[:12]) if container else None
        holders.append(Holder(_process_name(proc / str(entry), entry, shown), f"has {found} open", container))
    return ProcessScan(tuple(holders), unreadable)


def _identities(files: Iterable[Path]) -> dict[tuple[int, int], str]:
    identities = {}
    for path in files:
        try:
            status = path.stat()
        except OSError:
            continue
        identities[(status.st_dev, status.st_ino)] = path.name
    return identities


def _pids(proc: Path) -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir(proc) if name.isdigit())
    except OSError:
        return []


def _open_brain_file(process: Path, wanted: dict[tuple[int, int], str]) -> str | None:
    """The name of the brain file this process has open, "" when none, None when it cannot be read."""
    try:
        descriptors = os.listdir(process / "fd")
    except FileNotFoundError:
        return ""  # ended meanwhile
    except OSError:
        return None
    for descriptor in descriptors:
        try:
            status = os.stat(process / "fd" / descriptor)  # follows the link to the open file itself
        except OSError:
            continue
        name = wanted.get((status.st_dev, status.st_ino))
        if name is not None:
            return name
    return ""


def _container_of(process: Path) -> str | None:
    """The Docker container a process runs in, from the container id in its cgroup path."""
    try:
        found = CONTAINER_ID.search((process / "cgroup").read_text())
    except OSError:
        return None
    return found.group(0) if found else None


def _process_name(process: Path, pid: int, container: str | None) -> str:
    try:
        command = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    if len(command) > SHOWN_COMMAND:
        command = command[: SHOWN_COMMAND - 1] + "…"
    inside = f" in container {container}" if container else ""
    return f"process {pid} ({command or '?'}){inside}"


def lock_holder(brain: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Holder | None:
    """SQLite's own answer: can rollbot take the brain's exclusive lock?

    In exclusive locking mode an exclusive transaction needs every other connection gone,
    idle WAL connections included, and it writes nothing. The lock is released at once; what
    is asked is whether anyone else is there."""
    if not brain.is_file():
        return None
    try:
        with closing(
            sqlite3.connect(f"file:{quote(str(brain))}", uri=True, timeout=timeout, isolation_level=None)
        ) as connection:
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
            connection.execute("BEGIN EXCLUSIVE")
            connection.execute("ROLLBACK")
    except sqlite3.Error as error:
        return Holder("another connection", f"keeps {brain.name} from being locked (SQLite: {error})")
    return None


def holders_before_stop(
    brain: Path, docker: DockerFacts, service_containers: Collection[str]
) -> tuple[list[Holder], int]:
    """Holders other than the service's own containers (which the run stops), and how many
    processes could not be read. The Engine's processes are found by Docker too, in case their
    cgroup does not name their container."""
    running = docker.running_mounts()
    holders = containers_holding(brain, running, service_containers)
    engine_pids = {pid for container in service_containers for pid in docker.container_pids(container)}
    scan = processes_holding(brain, engine_pids, service_containers, {c.id: c.name for c in running})
    return _unique(holders + list(scan.holders)), scan.unreadable


def holders_after_stop(brain: Path, docker: DockerFacts) -> list[Holder]:
    """After the drain-stop nothing but rollbot may hold the brain: no container, no process, no
    connection SQLite knows of."""
    running = docker.running_mounts()
    holders = containers_holding(brain, running)
    holders += processes_holding(brain, names={c.id: c.name for c in running}).holders
    if not holders:
        locked = lock_holder(brain)
        holders += [locked] if locked is not None else []
    return _unique(holders)


def _unique(holders: list[Holder]) -> list[Holder]:
    """A process in a container that mounts the brain is said once, as the container."""
    mounting = {h.container_id for h in holders if h.what.startswith("container ")}
    return [h for h in holders if h.what.startswith("container ") or h.container_id not in mounting]


def describe_holders(holders: list[Holder]) -> str:
    """One line: every holder, the first ones in full."""
    shown = "; ".join(holder.describe() for holder in holders[:3])
    more = f"; and {len(holders) - 3} more" if len(holders) > 3 else ""
    return shown + more
