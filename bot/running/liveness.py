"""Who is running a run, and whether that process still lives.

A run's row names its owner (`host:pid`) and carries a heartbeat the owner renews every few
seconds. A process on the same host is known dead when its pid is gone; on another host (or
after a pid is reused) a heartbeat older than `STALE_AFTER` is the only sign, so both are kept.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from storage import Journal, Lease

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=HEARTBEAT_SECONDS * 6)


def process_owner() -> str:
    """Who is running a run: `host:pid`, enough to tell later whether that process still lives."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """Whether the process named by `owner` exists. A process on another host is assumed alive."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def heartbeat(
    journal: Journal, run_id: str, owner: Lease | str, every_seconds: float = HEARTBEAT_SECONDS
) -> Iterator[None]:
    """While a run executes, its row says so every few seconds, stamped by the database's clock:
    how other processes (other replicas, the next start) tell a live run from one whose process
    died. The beat names the runner's lease, so it stops once the run was taken over."""
    finished = threading.Event()

    def beat() -> None:
        while not finished.wait(every_seconds):
            try:
                if not journal.heartbeat(run_id, owner):
                    return
            except Exception:
                log.exception("heartbeat of run %s failed", run_id)

    thread = threading.Thread(target=beat, name=f"rollbot-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        finished.set()
