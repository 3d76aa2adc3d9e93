"""Writing files so that a crash never leaves a half-written one behind.

The journal describes the state of every file a run touched; that only holds if each write is
all or nothing and on disk before the journal says it happened. These helpers are shared by
the compose edit, the brain's snapshots and swap, and the ticket files, so they import nothing
outside the standard library.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a crash leaves the old file or the new, never half.

    The temporary file sits beside the target (same filesystem, so the rename is atomic), takes
    over the original's permission bits, and both the file and its folder are fsynced. A
    symlink is followed, so the file it points to is the one replaced.
    """
    path = path.resolve()
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_file(path: Path) -> None:
    """Force a file written by someone else (a copy, SQLite's backup) onto disk before it is relied on."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_directory(folder: Path) -> None:
    """A rename or a new name is durable only once its folder is fsynced, not the file alone."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
