"""Every call rollbot makes to Slack's Web API goes through one outbox of ordered lanes.

Slack being slow or answering 429 must never block or fail a rollback, and no message may be
lost. So the core's progress sink only enqueues. Messages are ordered within a lane, and each
lane has its own delivery thread: a target's run (announcement, status, thread replies, the
all-clear), a channel's plans, a person's ephemerals. One message retrying for minutes (a 429
storm, a channel Slack refuses) holds up its own lane only, never another target's progress.

Each call is retried honouring `Retry-After`, backing off on 5xx and connection errors, for up
to `give_up_after`. Edits of one message share a key: a newer edit replaces a pending older one
(the final state is always the last to land), and edits of one key are spaced at least
`min_interval` apart (Slack's chat.update tier 3). A call that fails for good (`not_in_channel`,
a DM rollbot cannot post in, retries exhausted) is logged with its run id, counted in
`rollbot_slack_undelivered_total` (served at /metrics), and handed to the sender's
`if_undelivered`, which tells the person where it can. Which failures are worth a retry is read
from Slack's answer by handlers/poster.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, generate_latest
from slack_sdk.errors import SlackApiError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from handlers.poster import retry_after, retryable

log = logging.getLogger(__name__)

GIVE_UP_AFTER_SECONDS = 30 * 60
IDLE_LANE_SECONDS = 60.0  # a lane's thread ends after this long with nothing to send
DEFAULT_LANE = "default"

Undelivered = Callable[[str], None]


@dataclass
class _Task:
    call: Callable[[], object]
    key: str | None = None
    lane: str = DEFAULT_LANE
    run_id: str | None = None
    if_undelivered: Undelivered | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None


@dataclass
class _Lane:
    name: str
    queue: deque[_Task]
    wake: threading.Condition


def _wait(state: RetryCallState) -> float:
    """Slack's Retry-After when it gave one, else exponential backoff up to 30 s."""
    error = state.outcome.exception() if state.outcome else None
    asked = retry_after(error)
    return asked if asked is not None else wait_exponential(multiplier=0.5, max=30)(state)


def slack_error(error: BaseException) -> str:
    """Slack's error code (`not_in_channel`, `ratelimited`), or the exception's type."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or "slack_error")
    return type(error).__name__


class Outbox:
    def __init__(
        self,
        min_interval: float = 1.0,
        give_up_after: float = GIVE_UP_AFTER_SECONDS,
        idle_seconds: float = IDLE_LANE_SECONDS,
    ) -> None:
        self._lock = threading.Lock()
        self._lanes: dict[str, _Lane] = {}
        self._pending_by_key: dict[str, _Task] = {}
        self._last_by_key: dict[str, float] = {}
        self._min_interval = min_interval
        self._give_up_after = give_up_after
        self._idle_seconds = idle_seconds
        self._stopping = False
        self._registry = CollectorRegistry(auto_describe=False)
        self._undelivered = Counter(
            "rollbot_slack_undelivered",
            "Slack Web API calls given up on for good, by lane kind and Slack's error",
            ["lane", "error"],
            registry=self._registry,
        )

    def send(
        self,
        call: Callable[[], object],
        key: str | None = None,
        lane: str = DEFAULT_LANE,
        run_id: str | None = None,
        if_undelivered: Undelivered | None = None,
    ) -> _Task:
        """Queue a Web API call at the end of `lane`. With a key, a pending call of the same key
        is replaced (in its place in its lane). `if_undelivered(error)` is called if it fails for good."""
        with self._lock:
            if key is not None and key in self._pending_by_key:
                task = self._pending_by_key[key]
                task.call = call
                return task
            task = _Task(call, key, lane, run_id, if_undelivered)
            found = self._lanes.get(lane)
            if found is None:
                found = _Lane(lane, deque(), threading.Condition(self._lock))
                self._lanes[lane] = found
                threading.Thread(target=self._run, args=(found,), name=f"slack-lane-{lane}", daemon=True).start()
            found.queue.append(task)
            if key is not None:
                self._pending_by_key[key] = task
            found.wake.notify()
            return task

    def drain(self, timeout: float = 30) -> bool:
        """Wait until everything queued so far, in every lane, has been delivered (or given up)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            names = list(self._lanes)
        markers = [self.send(lambda: None, lane=name) for name in names]
        return all(marker.done.wait(max(0.0, deadline - time.monotonic())) for marker in markers)

    def stop(self) -> None:
        """Lanes deliver what they hold, then their threads end."""
        with self._lock:
            self._stopping = True
            for lane in self._lanes.values():
                lane.wake.notify()

    def metrics(self) -> bytes:
        """`rollbot_slack_undelivered_total` in Prometheus' text format."""
        return generate_latest(self._registry)

    def _run(self, lane: _Lane) -> None:
        while True:
            with self._lock:
                while not lane.queue and not self._stopping:
                    if not lane.wake.wait(self._idle_seconds) and not lane.queue:
                        break
                if not lane.queue:
                    self._lanes.pop(lane.name, None)
                    return
                task = lane.queue[0]
            self._respect_interval(task)
            with self._lock:
                lane.queue.popleft()
                if task.key is not None:
                    self._pending_by_key.pop(task.key, None)
                call = task.call
            task.result = self._deliver(call, task)
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

    def _deliver(self, call: Callable[[], object], task: _Task) -> object:
        retrying = Retrying(
            retry=retry_if_exception(retryable),
            wait=_wait,
            stop=stop_after_delay(self._give_up_after),
            reraise=True,
        )
        try:
            return retrying(call)
        except Exception as error:  # noqa: BLE001 - reported below, never raised into a lane
            self._gave_up(task, error)
            return None

    def _gave_up(self, task: _Task, error: Exception) -> None:
        code = slack_error(error)
        self._undelivered.labels(lane=task.lane.split(":")[0], error=code).inc()
        log.error(
            "a Slack call in lane %s failed for good (%s) and was not delivered",
            task.lane,
            code,
            exc_info=error,
            extra={"run_id": task.run_id} if task.run_id else None,
        )
        if task.if_undelivered is not None:
            try:
                task.if_undelivered(code)
            except Exception:
                log.warning("could not tell anyone that a Slack message was not delivered", exc_info=True)
