"""The parts of a captured log worth showing people in the incident channel.

The whole capture (up to `log_cap_mb`) stays in the evidence folder and goes with the postmortem;
the channel gets its last part, small enough to open in Slack, and, when a run fails, the error
lines from it, so people see what broke without a shell on rollbot's host.
"""

from __future__ import annotations

import re
from pathlib import Path

SHARE_CAP_BYTES = 256 * 1024  # the last part of the log shared in the thread
ERROR_LINES = 12
ERROR_LINE = re.compile(r"\b(error|fatal|critical|panic|exception|traceback)\b", re.IGNORECASE)
MAX_LINE = 300


def log_tail(path: Path, cap: int = SHARE_CAP_BYTES) -> bytes:
    """The last `cap` bytes of the log from a line start, headed by what was left out and where
    the whole log is, when anything was."""
    size = path.stat().st_size
    with path.open("rb") as log:
        if size <= cap:
            return log.read()
        log.seek(size - cap)
        tail = log.read()
    start = tail.find(b"\n") + 1
    head = f"[rollbot: the first {size - cap + start} bytes are left out here; the whole log is {path}]\n"
    return head.encode() + tail[start:]


def error_lines(path: Path, limit: int = ERROR_LINES, cap: int = SHARE_CAP_BYTES) -> list[str]:
    """The last `limit` lines of the log's last part that say error, fatal, panic, exception or
    traceback, each clipped; empty when the log cannot be read."""
    try:
        text = log_tail(path, cap).decode("utf-8", errors="replace")
    except OSError:
        return []
    found = [line.rstrip() for line in text.splitlines() if ERROR_LINE.search(line)]
    return [line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for line in found[-limit:]]
