"""Every call rollbot makes to Slack's Web API goes through one ordered, retrying outbox.

Slack being slow or answering 429 must never block or fail a rollback, and no message may be
lost. So the core's progress sink only enqueues; one worker thread delivers in order, honouring
`Retry-After` and backing off on 5xx and connection errors. Edits of one message share a key:
a newer edit replaces a pending older one (the final state is always the last to land), and
edits of one key are spaced at least `min_interval` apart (Slack's chat.update tier 3). Which
failures are worth a retry is read from Slack's answer by handlers/poster.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from handlers.poster import retry_after, retryable

log = logging.getLogger(__name__)

GIVE_UP_AFTER_SECONDS = 30 * 60


@dataclass
class _Task:
    call: Callable[[], object]
    key: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None


def _wait(state: RetryCallState) -> float:
    """Slack's Retry-After when it gave one, else exponential backoff up to 30 s."""
    error = state.outcome.exception() if state.outcome else None
    asked = retry_after(error)
    return asked if asked is not None else wait_exponential(multiplier=0.5, max=30)(state)


class Outbox:
    def __init__(self, min_interval: float = 1.0, give_up_after: float = GIVE_UP_AFTER_SECONDS) -> None:
        self._queue: deque[_Task] = deque()
        self._pending_by_key: dict[str, _Task] = {}
        self._last_by_key: dict[str, float] = {}
        self._condition = threading.Condition()
        self._min_interval = min_interval
        self._give_up_after = give_up_after
        self._stopping = False
        self._worker = threading.Thread(target=self._run, name="slack-outbox", daemon=True)
        self._worker.start()

    def send(self, call: Callable[[], object], key: str | None = None) -> _Task:
        """Queue a Web API call. With a key, a pending call of the same key is replaced."""
        with self._condition:
            if key is not None and key in self._pending_by_key:
                task = self._pending_by_key[key]
                task.call = call
                return task
            task = _Task(call, key)
            self._queue.append(task)
            if key is not None:
                self._pending_by_key[key] = task
            self._condition.notify()
            return task

    def drain(self, timeout: float = 30) -> bool:
        """Wait until everything queued so far has been delivered (or given up)."""
        marker = self.send(lambda: None)
        return marker.done.wait(timeout)

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._stopping:
                    self._condition.wait()
                if not self._queue:
                    return
                task = self._queue[0]
            self._respect_interval(task)
            with self._condition:
                self._queue.popleft()
                if task.key is not None:
                    self._pending_by_key.pop(task.key, None)
                call = task.call
            task.result = self._deliver(call)
            if task.key is not None:
                self._last_by_key[task.key] = time.monotonic()
            task.done.set()

    def _respect_interval(self, task: _Task) -> None:
        if task.key is None or task.key not in self._last_by_key:
            return
        due = self._last_by_key[task.key] + self._min_interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _deliver(self, call: Callable[[], object]) -> object:
        retrying = Retrying(
            retry=retry_if_exception(retryable),
            wait=_wait,
            stop=stop_after_delay(self._give_up_after),
            reraise=True,
        )
        try:
            return retrying(call)
        except Exception:
            log.exception("a Slack call failed for good and was dropped")
            return None
