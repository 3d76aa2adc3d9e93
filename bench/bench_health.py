"""Downtime as a client sees it: a background poller on `/health` and the gaps in its ok answers.

The poller asks `/health` about every 50 ms and records, for each question, the moment its
answer (or its failure) arrived and what it was. A gap is a run of not-ok answers, measured from
the last ok answer before it to the first ok answer after it. The downtime of a procedure is its
longest gap; shorter ones (an answer slower than the request timeout while the machine is busy,
say) are reported apart, not added in. Both procedures of the benchmark are measured by this
same code, so the figures compare; each is exact to about one polling interval.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import httpx

POLL_INTERVAL = 0.05
REQUEST_TIMEOUT = 0.5


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the answer (or the error) arrived
    answer: str  # "ok", "HTTP 503", "timeout", "refused", … — why it was not ok

    @property
    def ok(self) -> bool:
        return self.answer == "ok"


@dataclass(frozen=True)
class Gap:
    """A span without an ok answer, bounded by ok answers on both sides."""

    last_ok_before: float
    first_ok_after: float
    answers: tuple[str, ...]  # the not-ok answers inside it

    @property
    def seconds(self) -> float:
        return self.first_ok_after - self.last_ok_before

    def describe(self) -> str:
        counts = Counter(self.answers)
        return ", ".join(f"{answer} x{count}" for answer, count in counts.most_common())


def is_ok(response: httpx.Response) -> bool:
    """What rollbot and the runbook's `curl -fsS` call ok: 2xx, and a JSON status of "ok"."""
    if not response.is_success:
        return False
    try:
        return response.json().get("status") == "ok"
    except ValueError:
        return False


class HealthPoller:
    """Polls one URL in a thread from `start()` to `stop()`; use it as a context manager."""

    def __init__(self, url: str, interval: float = POLL_INTERVAL) -> None:
        self._url = url
        self._interval = interval
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-poller", daemon=True)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def wait_steady_ok(self, count: int = 5, timeout: float = 30) -> None:
        """Block until the last `count` answers were all ok (the Engine is up before we start)."""
        self._wait(lambda s: len(s) >= count and all(x.ok for x in s[-count:]), timeout, f"{count} ok answers")

    def wait_recovered(self, count: int = 5, timeout: float = 300) -> None:
        """Block until a not-ok answer has been seen and the last `count` answers are ok again."""

        def recovered(s: list[Sample]) -> bool:
            return any(not x.ok for x in s) and len(s) >= count and all(x.ok for x in s[-count:])

        self._wait(recovered, timeout, "/health ok again after the outage")

    def gaps(self) -> list[Gap]:
        """Every run of not-ok answers, longest first; raises when one is not closed by ok answers."""
        samples, found, start = self.samples(), [], None
        for index, sample in enumerate(samples):
            if not sample.ok and start is None:
                if index == 0:
                    raise RuntimeError("the poller's first answer was not ok: no ok answer before the outage")
                start = index
            elif sample.ok and start is not None:
                answers = tuple(s.answer for s in samples[start:index])
                found.append(Gap(samples[start - 1].at, sample.at, answers))
                start = None
        if start is not None:
            raise RuntimeError("the poller stopped before /health answered ok again")
        return sorted(found, key=lambda gap: gap.seconds, reverse=True)

    def _wait(self, condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self.samples()):
                return
            time.sleep(self._interval)
        raise RuntimeError(f"{self._url}: no {what} within {timeout:.0f}s")

    def _run(self) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            while not self._stopping.is_set():
                asked = time.monotonic()
                answer = self._ask(client)
                with self._lock:
                    self._samples.append(Sample(time.monotonic(), answer))
                self._stopping.wait(max(0.0, self._interval - (time.monotonic() - asked)))

    def _ask(self, client: httpx.Client) -> str:
        try:
            response = client.get(self._url)
        except httpx.TimeoutException:
            return "timeout"
        except httpx.ConnectError:
            return "refused"
        except httpx.HTTPError as error:
            return type(error).__name__
        return "ok" if is_ok(response) else f"HTTP {response.status_code}"
