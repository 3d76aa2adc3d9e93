"""Files for the benchmark: brains of a given size, the runbook's snapshot, and timed copies/checks.

Brains have the demo Engine's schema-1 tables (episodes, knowledge, social_graph, conversations,
feedback: id INTEGER PRIMARY KEY, created_at TEXT, content TEXT), filled by a recursive CTE
with hex(randomblob(...)) rows, in WAL mode with user_version = 1 — what the Engine itself
would have made. Timings use time.perf_counter and include an fsync wherever a copy is timed,
so every copy is measured to the same point: its bytes on disk.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from bot.brain.facts import readonly, sha256
from bot.brain.snapshots import Snapshot
from bot.brain.swap import discard_staged, stage
from bot.files import fsync_file

MEMORY_TABLES = ("episodes", "knowledge", "social_graph", "conversations", "feedback")
CONTENT_BYTES = 240  # randomblob size; the row's text is twice that in hex
PILOT_ROWS = 4000


def _fill(connection: sqlite3.Connection, rows_per_table: int) -> None:
    for table in MEMORY_TABLES:
        connection.execute(
            f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, content TEXT NOT NULL)"
        )
        connection.execute(
            f"""INSERT INTO {table} (created_at, content)
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                SELECT strftime('%Y-%m-%dT%H:%M:%f', '2024-01-01', '+' || (i * 7) || ' seconds'),
                       hex(randomblob({CONTENT_BYTES}))
                FROM n""",
            (rows_per_table,),
        )


def _bytes_per_row() -> float:
    """Measured on a small in-memory brain, so the big one lands near its target size."""
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as pilot:
        _fill(pilot, PILOT_ROWS)
        pages = pilot.execute("PRAGMA page_count").fetchone()[0]
        page_size = pilot.execute("PRAGMA page_size").fetchone()[0]
    return pages * page_size / (PILOT_ROWS * len(MEMORY_TABLES))


def make_brain(path: Path, target_bytes: int) -> int:
    """A schema-1 brain of about `target_bytes`, in WAL mode; returns the number of rows per table."""
    rows = max(1, round(target_bytes / _bytes_per_row() / len(MEMORY_TABLES)))
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(path, isolation_level=None)) as brain:
        brain.execute("PRAGMA journal_mode=OFF")  # bulk load without a journal; WAL is set below
        brain.execute("PRAGMA synchronous=OFF")
        _fill(brain, rows)
        brain.execute("PRAGMA user_version=1")
        brain.execute("PRAGMA journal_mode=WAL")
    fsync_file(path)
    return rows


def runbook_snapshot(brain: Path, destination: Path) -> None:
    """The runbook's `brain-pre-upgrade.db`: a consistent copy of the live brain (SQLite backup API)."""
    with closing(readonly(brain)) as live, closing(sqlite3.connect(destination)) as copy:
        live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
        copy.commit()
    fsync_file(destination)


def user_version(path: Path) -> int:
    with closing(readonly(path)) as brain:
        return int(brain.execute("PRAGMA user_version").fetchone()[0])


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def copy_like_stage(source: Path, destination: Path) -> None:
    """The copy part of bot.brain.swap.stage, exactly: shutil.copyfile, then fsync the copy."""
    shutil.copyfile(source, destination)
    fsync_file(destination)


def copy_with_cp(source: Path, destination: Path) -> None:
    """`cp SRC DST` followed by an fsync of DST."""
    subprocess.run(["cp", str(source), str(destination)], check=True)
    fsync_file(destination)


def snapshot_of(path: Path) -> Snapshot:
    """A Snapshot as rollbot's sidecar describes it (checksum known), so stage() hashes only the copy."""
    return Snapshot(
        path=path,
        taken_at=datetime.now(UTC),
        schema_version=user_version(path),
        size=path.stat().st_size,
        checksum=sha256(path),
        image_tag=None,
    )


def run_stage(snapshot: Snapshot, brain: Path, run_id: str) -> None:
    """bot.brain.swap.stage itself: copy + fsync + sha256 of the copy + integrity/quick check."""
    stage(snapshot, brain, run_id)
    discard_staged(brain, run_id)


def indexed_copy(source: Path, destination: Path) -> None:
    """The snapshot plus an index on created_at in every memory table, as a real Engine's brain has.

    The demo schema has no secondary index, and an index is exactly what integrity_check
    cross-checks and quick_check skips; this copy shows what the threshold is for.
    """
    shutil.copyfile(source, destination)
    with closing(sqlite3.connect(destination, isolation_level=None)) as brain:
        brain.execute("PRAGMA synchronous=OFF")
        for table in MEMORY_TABLES:
            brain.execute(f"CREATE INDEX {table}_created_at ON {table} (created_at)")


def check_seconds(path: Path, pragma: str) -> float:
    """Time `PRAGMA integrity_check` or `quick_check` on a snapshot, opened as rollbot opens it."""
    uri = f"file:{quote(str(path))}?mode=ro&immutable=1"
    with closing(sqlite3.connect(uri, uri=True)) as brain:
        started = time.perf_counter()
        result = brain.execute(f"PRAGMA {pragma}(5)").fetchall()
        seconds = time.perf_counter() - started
    if result != [("ok",)]:
        raise RuntimeError(f"{path.name} fails {pragma}: {result}")
    return seconds
