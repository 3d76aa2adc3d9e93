"""Writing the bad version's logs to a file with a size cap that keeps both ends.

A crash-looping Engine can print gigabytes; the postmortem needs how it started (the first
lines: the upgrade, the migration) and how it ended (the last lines: the errors before the
rollback), not the middle. So past the cap the middle is cut, and the cut is marked in the file
with how much was left out. Docker log streams arrive in chunks that need not end on a line:
lines are reassembled before deciding what to keep.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO


@dataclass(frozen=True)
class Section:
    """The log stream of one container, with the line that introduces it (None: no header)."""

    header: bytes | None
    chunks: Iterable[bytes]


@dataclass
class CappedWriter:
    """Keeps whole lines: the first ones up to half the cap, the last ones in what is left of it."""

    handle: BinaryIO
    cap: int
    written: int = 0
    _head_full: bool = False
    _tail: deque[bytes] = field(default_factory=deque)
    _tail_bytes: int = 0
    _cut_lines: int = 0
    _cut_bytes: int = 0

    def line(self, data: bytes) -> None:
        if not self._head_full and self.written + len(data) <= self.cap // 2:
            self._write(data)
            return
        self._head_full = True
        self._tail.append(data)
        self._tail_bytes += len(data)
        while self._tail_bytes > self.cap - self.written:
            dropped = self._tail.popleft()
            self._tail_bytes -= len(dropped)
            self._cut_lines += 1
            self._cut_bytes += len(dropped)

    def finish(self) -> int:
        """Write the marker (when something was cut) and the kept last lines; the bytes written."""
        if self._cut_lines:
            self._write(cut_marker(self._cut_lines, self._cut_bytes, self.cap))
        for data in self._tail:
            self._write(data)
        self._tail.clear()
        return self.written

    def _write(self, data: bytes) -> None:
        self.handle.write(data)
        self.written += len(data)


def cut_marker(lines: int, size: int, cap: int) -> bytes:
    return (
        f"----- rollbot cut {lines} line(s), {size} bytes, here: the log is longer than its cap of "
        f"{cap} bytes (log_cap_mb); the first and the last lines are kept -----\n"
    ).encode()


def write_capped(sections: Iterable[Section], handle: BinaryIO, cap: int) -> int:
    """Write every section's lines (its header first) under one cap; return the bytes written."""
    writer = CappedWriter(handle, cap)
    for section in sections:
        if section.header is not None:
            writer.line(section.header)
        for data in lines_of(section.chunks):
            writer.line(data)
    return writer.finish()


def lines_of(chunks: Iterable[bytes]) -> Iterable[bytes]:
    """Whole lines (newline kept) out of chunks cut anywhere; a last line without one gets one."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for data in complete:
            yield data + b"\n"
    if pending:
        yield pending + b"\n"
