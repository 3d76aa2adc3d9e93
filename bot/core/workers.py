"""The core's own threads, and how they stop: work runs after a front end has answered its caller.

Two lanes: runs (long, few, never starved) and everything else (plans, status, snapshots). The
second is narrow on purpose: a burst of requests queues there instead of taking the CPU and the
GIL from the threads that answer Slack. On SIGTERM runs in flight are given time to reach the end
of their step, so the next start can resume them from the journal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for

from bot.core.foreground import Foreground
from bot.running.liveness import process_owner
from storage import Journal, RunStatus

log = logging.getLogger(__name__)
SHUTTING_DOWN = "rollbot is shutting down; click again in a minute (the next start takes it from there)"


class Workers:
    def __init__(self, journal: Journal, foreground: Foreground, run_workers: int, patience: float) -> None:
        self._journal = journal
        self._foreground = foreground
        self._patience = patience
        self._runs = ThreadPoolExecutor(max_workers=run_workers, thread_name_prefix="rollbot-run")
        self._work = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rollbot-work")
        # Set once shutdown begins: runners watch it to stop at the end of a step, and no run starts.
        self.stop_signal = threading.Event()
        self._run_futures: set[Future[object]] = set()
        self._futures_lock = threading.Lock()

    def background(self, work: Callable[..., object], *args: object, runs: bool = False) -> Future[object]:
        """Run `work` on the core's own threads, after a front end has answered its caller.
        `runs=True` for work that may execute a rollback (a confirmation click): it starts at
        once. Anything else waits (boundedly) until no caller is being answered, see
        bot/core/foreground.py."""
        if runs:
            future = self._runs.submit(work, *args)
            with self._futures_lock:
                self._run_futures.add(future)
            future.add_done_callback(self._forget)
        else:
            future = self._work.submit(self._when_quiet, time.monotonic() + self._patience, work, *args)
        future.add_done_callback(_log_failure)
        return future

    def _forget(self, future: Future[object]) -> None:
        with self._futures_lock:
            self._run_futures.discard(future)

    @property
    def stopping(self) -> bool:
        return self.stop_signal.is_set()

    def stop_gracefully(self, timeout: float) -> list[str]:
        """SIGTERM: take no new runs, let each run in flight reach the end of its step (the runner
        then journals it `interrupted` for the next start to resume), at most `timeout` seconds.
        Returns the ids of runs still in a step when the time ran out; those are journaled as
        interrupted here, so the next start reports them too."""
        self.stop_signal.set()
        with self._futures_lock:
            pending = set(self._run_futures)
        wait_for(pending, timeout=timeout)
        owner = process_owner()
        left = [run for run in self._journal.runs(limit=50, status=RunStatus.RUNNING) if run.owner == owner]
        actor = f"rollbot@{owner}"
        for run in self._journal.mark_interrupted(lambda who: who != owner, actor=actor):
            log.warning(
                "run %s was still in step %s at shutdown; it is journaled as interrupted", run.id, run.current_step
            )
        self._work.shutdown(wait=False, cancel_futures=True)
        return [run.id for run in left]

    def _when_quiet(self, deadline: float, work: Callable[..., object], *args: object) -> object:
        """The wait counts from submission, so under a long stream of requests queued work is
        delayed by the patience at most, never by the patience once per item."""
        self._foreground.wait_for_quiet(deadline - time.monotonic())
        return work(*args)

    def shutdown(self, wait: bool = True) -> None:
        self._work.shutdown(wait=wait)
        self._runs.shutdown(wait=wait)


def _log_failure(future: Future[object]) -> None:
    error = future.exception()
    if error is not None:
        log.error("background work failed", exc_info=error)
