"""Snapshots of a target's brain: taking them while the Engine runs, and finding them later.

A snapshot is a consistent copy made with SQLite's online backup API (the Engine keeps
writing meanwhile), switched to rollback-journal mode so it is one self-contained file, and
described by a JSON sidecar: when, which image tag was running, schema version, size and
checksum. Snapshots made by hand with the runbook's name (`brain-pre-upgrade.db`, beside the
brain or in the snapshots folder) are found too; their facts are read from the file itself.

Snapshots and sidecars are written 0600 in a 0700 folder: they are copies of the brain.

A snapshot and a run's brain restore exclude each other through one lock per brain: an
`flock` on `.<brain>.rollbot-lock` beside the brain, taken by `take_snapshot` for the whole
backup and by `brain_swap.stage`/`swap` (never waited for: the one that finds it held says
who holds it). The core takes the lock before it looks for a run in progress, and a run is
journaled running before it stages, so either the snapshot sees the run and is refused, or
the run finds the snapshot's lock and fails before its drain-stop. flock works across
processes and containers of one host and is released by the kernel when a holder dies.

A sidecar is a claim, and it decides whether a brain is restored, so it is checked before it
is believed: its schema against the file itself, its time against the clock (no
snapshot is taken in the future), and all its facts against `facts_digest`, a SHA-256 over the
facts and the file's checksum, so a fact edited by hand (or a sidecar copied beside another
file) no longer matches; `verify` ties the checksum to the file's bytes. The digest has no
secret: whoever can rewrite the snapshot folder can forge a consistent pair, as they could
replace the snapshot itself; it catches mistakes and partial edits, not a determined writer.
A sidecar that does not hold up is ignored, with the reason (`snapshot --list` shows it): the
file is described from itself, as one made by hand. Sidecars written before the digest existed
are checked against the file and the clock only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.brain.facts import BrainError, check_integrity, readonly, schema_version, sha256
from bot.config import BrainConfig
from bot.files import fsync_directory, fsync_file

RUNBOOK_NAME = "brain-pre-upgrade.db"
SNAPSHOT_SUFFIXES = (".sqlite", ".db", ".sqlite3")
DIGESTED_FACTS = ("taken_at", "schema_version", "size", "checksum", "image_tag")
# An upgrade's snapshot says so: digested only when present, so older sidecars keep their digest.
UPGRADE_FACTS = ("upgrade_run", "upgrade_to")
CLOCK_SKEW = timedelta(minutes=5)  # a sidecar written by a host whose clock runs a little ahead


@dataclass(frozen=True)
class Snapshot:
    path: Path
    taken_at: datetime
    schema_version: int | None
    size: int
    checksum: str | None
    image_tag: str | None = None
    by_hand: bool = False
    upgrade_run: str | None = None  # taken by this upgrade run just before its stop: its pre-upgrade snapshot
    upgrade_to: str | None = None  # the version that upgrade went to

    def describe_purpose(self) -> str:
        """How the plan names it: the pre-upgrade snapshot of which upgrade, or who took it."""
        if self.upgrade_run:
            return (
                f"the pre-upgrade snapshot of upgrade run {self.upgrade_run} ({self.image_tag} → {self.upgrade_to}, "
                f"{self.taken_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        return f"taken while {self.image_tag} ran" if self.image_tag else ("by hand" if self.by_hand else "")

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.taken_at).total_seconds()

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.update(path=str(self.path), taken_at=self.taken_at.isoformat())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        taken_at = datetime.fromisoformat(str(data["taken_at"]))
        return cls(
            Path(data["path"]),
            taken_at if taken_at.tzinfo else taken_at.replace(tzinfo=UTC),
            data.get("schema_version"),
            int(data["size"]),
            data.get("checksum"),
            data.get("image_tag"),
            bool(data.get("by_hand")),
            data.get("upgrade_run"),
            data.get("upgrade_to"),
        )


class BrainBusy(BrainError):
    """Another snapshot or a restore holds the brain's lock."""


def lock_path(brain: Path) -> Path:
    return brain.with_name(f".{brain.name}.rollbot-lock")


@contextmanager
def brain_lock(brain: Path, holder: str) -> Iterator[None]:
    """Hold the brain's lock (see the module) or raise BrainBusy naming who holds it; never waits."""
    path = lock_path(brain)
    if not brain.is_file():
        raise BrainError(f"{brain}: the brain does not exist")
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise BrainError(f"{path}: cannot take the brain's lock: {error.strerror}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held_by = os.pread(descriptor, 500, 0).decode(errors="replace").strip() or "another process"
            raise BrainBusy(f"{brain} is busy: {held_by}; try again when it is done") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(
            descriptor,
            f"{holder} (pid {os.getpid()} on {socket.gethostname()}, since "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC)".encode(),
            0,
        )
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def take_snapshot(
    brain: BrainConfig,
    image_tag: str | None,
    now: datetime | None = None,
    upgrade: tuple[str, str] | None = None,
) -> Snapshot:
    """Copy the live brain consistently into `snapshots_dir` and describe it in a sidecar.
    The caller holds `brain_lock` (the core does, see Rollbot.take_snapshot). `upgrade` is
    (run id, version going in) when an upgrade takes it just before its stop."""
    taken_at = now or datetime.now(UTC)
    folder = brain.snapshots_dir
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    name = f"brain-{taken_at:%Y%m%dT%H%M%SZ}" + (f"-{image_tag}" if image_tag else "")
    final = folder / f"{name}.sqlite"
    same_second = 1
    while final.exists():  # never replace an earlier snapshot taken in the same second
        same_second += 1
        final = folder / f"{name}-{same_second}.sqlite"
    partial = folder / f".{name}.sqlite.partial"
    try:
        partial.unlink(missing_ok=True)
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # private before any byte
        _backup(brain.path, partial)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    snapshot = Snapshot(
        path=final,
        taken_at=taken_at,
        schema_version=schema_version(final, brain.schema_query, immutable=True),
        size=final.stat().st_size,
        checksum=sha256(final),
        image_tag=image_tag,
        upgrade_run=upgrade[0] if upgrade else None,
        upgrade_to=upgrade[1] if upgrade else None,
    )
    _write_sidecar(snapshot)
    fsync_directory(folder)
    return snapshot


def list_snapshots(brain: BrainConfig) -> list[Snapshot]:
    """Every snapshot of this brain, newest first: rollbot's own and the runbook's by-hand one."""
    return [snapshot for snapshot, _ in described_snapshots(brain)]


def described_snapshots(brain: BrainConfig) -> list[tuple[Snapshot, str | None]]:
    """Every snapshot, newest first, with why its sidecar was not believed (None: it was, or there is none)."""
    found: dict[Path, tuple[Snapshot, str | None]] = {}
    folders = [brain.snapshots_dir, brain.path.parent]
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.resolve() == brain.path.resolve():
                continue
            beside_brain = folder == brain.path.parent and folder != brain.snapshots_dir
            if beside_brain and path.name != RUNBOOK_NAME:
                continue
            if path.suffix in SNAPSHOT_SUFFIXES and path.is_file():
                found[path.resolve()] = _describe(path, brain)
    return sorted(found.values(), key=lambda pair: pair[0].taken_at, reverse=True)


def verify(snapshot: Snapshot) -> str | None:
    """None when the snapshot is sound; otherwise what is wrong with it, in one line."""
    if not snapshot.path.is_file():
        return f"{snapshot.path} does not exist"
    if snapshot.checksum and sha256(snapshot.path) != snapshot.checksum:
        return f"{snapshot.path.name} does not match the checksum recorded when it was taken"
    pragma, result = check_integrity(snapshot.path)
    if result != "ok":
        return f"{snapshot.path.name} fails {pragma}: {result[:200]}"
    return None


def _backup(source: Path, destination: Path) -> None:
    """SQLite's online backup in one pass.

    Copying in chunks would let writers in between chunks, but every commit by another
    connection restarts a chunked backup from the first page, so a busy brain's snapshot would
    never finish. One pass holds only a read transaction, and in WAL mode readers do not block
    the Engine's writers.
    """
    if not source.is_file():
        raise BrainError(f"{source}: the brain does not exist")
    with closing(readonly(source)) as live, closing(sqlite3.connect(destination)) as copy:
        try:
            live.backup(copy, pages=-1)
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.commit()
        except sqlite3.Error as error:
            raise BrainError(f"snapshot of {source} failed: {error}") from None
    fsync_file(destination)


def _write_sidecar(snapshot: Snapshot) -> None:
    sidecar = snapshot.path.with_suffix(snapshot.path.suffix + ".json")
    data = snapshot.to_dict()
    data["facts_digest"] = facts_digest(snapshot.path.name, data)
    with os.fdopen(os.open(sidecar, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
        out.write(json.dumps(data, indent=2) + "\n")


def facts_digest(name: str, data: dict[str, Any]) -> str:
    """SHA-256 over the file's name and the sidecar's facts (its checksum among them), canonically encoded."""
    facts = {"name": name, **{key: data.get(key) for key in DIGESTED_FACTS}}
    facts.update({key: data[key] for key in UPGRADE_FACTS if data.get(key) is not None})
    return hashlib.sha256(json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _from_sidecar(path: Path, data: dict[str, object]) -> Snapshot:
    """Facts from a sidecar, each of the type it must have; anything else counts as damage."""
    taken_at = datetime.fromisoformat(str(data["taken_at"]))
    schema, size = data.get("schema_version"), data["size"]
    checksum, tag = data.get("checksum"), data.get("image_tag")
    upgrade_run, upgrade_to = data.get("upgrade_run"), data.get("upgrade_to")
    if not (upgrade_run is None or isinstance(upgrade_run, str)) or not (
        upgrade_to is None or isinstance(upgrade_to, str)
    ):
        raise ValueError("sidecar facts of the wrong type")
    if taken_at.tzinfo is None or not isinstance(size, int) or not (schema is None or isinstance(schema, int)):
        raise ValueError("sidecar facts of the wrong type")
    if not (checksum is None or isinstance(checksum, str)) or not (tag is None or isinstance(tag, str)):
        raise ValueError("sidecar facts of the wrong type")
    return Snapshot(
        path=path,
        taken_at=taken_at,
        schema_version=schema,
        size=size,
        checksum=checksum,
        image_tag=tag,
        upgrade_run=upgrade_run,
        upgrade_to=upgrade_to,
    )


def _describe(path: Path, brain: BrainConfig) -> tuple[Snapshot, str | None]:
    """The sidecar's facts when they hold up against the file; otherwise the file's own, and why."""
    sidecar = path.with_suffix(path.suffix + ".json")
    by_hand = _by_hand(path, brain)
    if not sidecar.is_file():
        return by_hand, None
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        claimed = _from_sidecar(path, data)
    except (ValueError, KeyError, TypeError, AttributeError):
        return by_hand, f"the sidecar {sidecar.name} is damaged; described from the file alone"
    problem = _disbelief(path, data, claimed, by_hand)
    if problem:
        return by_hand, f"the sidecar {sidecar.name} does not hold up ({problem}); described from the file alone"
    return claimed, None


def _disbelief(path: Path, data: dict[str, Any], claimed: Snapshot, found: Snapshot) -> str | None:
    """Why the sidecar's facts are not to be believed, or None when they match the file and the clock."""
    if "facts_digest" in data and data["facts_digest"] != facts_digest(path.name, data):
        return "its facts do not match their digest: edited by hand, or written for another file"
    # A size that differs, or a schema that cannot be read, means the file changed, not the sidecar:
    # the sidecar is kept so that `verify` reports the file against the checksum it recorded.
    if found.schema_version is not None and claimed.schema_version != found.schema_version:
        return f"it says schema {claimed.schema_version}, the file is at schema {found.schema_version}"
    if claimed.taken_at > datetime.now(UTC) + CLOCK_SKEW:
        return f"it says taken at {claimed.taken_at.isoformat()}, which is in the future"
    return None


def _by_hand(path: Path, brain: BrainConfig) -> Snapshot:
    """A snapshot described from the file alone: schema read from it, time from its mtime."""
    stat = path.stat()
    try:
        version: int | None = schema_version(path, brain.schema_query, immutable=True)
    except BrainError:
        version = None
    return Snapshot(
        path=path,
        taken_at=datetime.fromtimestamp(stat.st_mtime, UTC),
        schema_version=version,
        size=stat.st_size,
        checksum=None,
        by_hand=True,
    )
