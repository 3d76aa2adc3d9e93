"""Callers first: background work that can wait lets a burst of requests be answered before it.

A front end marks the time it spends answering a caller (Slack wants every ack within 3
seconds). Work handed to the background that nobody is waiting on right now (a plan, a status
report, a snapshot) starts only once no caller has been answered for a short settle time, or
after a bounded wait at most. Both run in one Python process: without this, the plans queued by
a burst of commands are worked on while the rest of the burst waits for its acks, and take the
GIL and, on a small machine, the CPU from them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SETTLE_SECONDS = 0.05  # no caller answered for this long: the burst is over
PATIENCE_SECONDS = 1.0  # background work never waits longer than this for a quiet moment


class Foreground:
    def __init__(self, settle: float = SETTLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._settle = settle
        self._clock = clock
        self._answering = 0
        self._last_answer = float("-inf")
        self._changed = threading.Condition()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Around the answer to one caller (thread-safe; callers may overlap)."""
        with self._changed:
            self._answering += 1
        try:
            yield
        finally:
            with self._changed:
                self._answering -= 1
                self._last_answer = self._clock()
                if self._answering == 0:  # waiters sleep through a burst: no wake-up per answer
                    self._changed.notify_all()

    def wait_for_quiet(self, patience: float = PATIENCE_SECONDS) -> bool:
        """Block until no caller is being answered and none was for the settle time, or until
        `patience` seconds have passed. True when it was quiet, False when patience ran out."""
        deadline = self._clock() + patience
        with self._changed:
            while True:
                now = self._clock()
                quiet_in = self._quiet_in(now)
                if quiet_in <= 0:
                    return True
                if now >= deadline:
                    return False
                self._changed.wait(min(quiet_in, deadline - now))

    def _quiet_in(self, now: float) -> float:
        """Seconds until it is quiet if no caller comes meanwhile: 0 when it is quiet now, and
        unknown (infinite) while one is being answered; the end of an answer wakes the wait."""
        if self._answering:
            return math.inf
        return max(0.0, self._last_answer + self._settle - now)
