"""/health is polled until ok or out of time; tests run on a fake clock, so they take no real time."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from bot.adapters.health import HealthProbe
from bot.ports import HealthResult

URL = "http://engine.test:8080/health"


class FakeTime:
    """A monotonic clock that only moves when someone sleeps or a request takes time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


Handler = Callable[[httpx.Request], httpx.Response]


class Endpoint:
    """A /health endpoint on the fake clock: answers in turn, each taking `latency` seconds.

    A request that would take longer than the timeout the probe passed gives up at that
    timeout, as httpx does, and raises ReadTimeout.
    """

    def __init__(
        self, time: FakeTime, answers: list[httpx.Response | type[httpx.TransportError]], latency: float = 0.0
    ) -> None:
        self.time = time
        self.answers = answers
        self.latency = latency
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        read_timeout = request.extensions["timeout"]["read"]
        if self.latency > read_timeout:
            self.time.now += read_timeout
            raise httpx.ReadTimeout("timed out", request=request)
        self.time.now += self.latency
        if isinstance(answer, type):
            raise answer("connection refused", request=request)
        return answer


def probe(time: FakeTime, endpoint: Endpoint, interval: float = 1.0) -> HealthProbe:
    client = httpx.Client(transport=httpx.MockTransport(endpoint))
    return HealthProbe(client=client, interval=interval, clock=time.clock, sleep=time.sleep)


def ok_json(status: str, code: int = 200) -> httpx.Response:
    return httpx.Response(code, json={"status": status})


def wait(
    answers: list[httpx.Response | type[httpx.TransportError]],
    timeout: float = 10.0,
    latency: float = 0.0,
    interval: float = 1.0,
) -> tuple[HealthResult, Endpoint, FakeTime]:
    time = FakeTime()
    endpoint = Endpoint(time, answers, latency)
    started = time.now
    result = probe(time, endpoint, interval).wait_until_healthy(URL, timeout)
    assert time.now - started <= timeout + interval, "the probe ran past its timeout"
    return result, endpoint, time


@pytest.mark.parametrize("status", ["ok", "OK", "healthy", "pass", "up"])
def test_json_status_ok_is_healthy(status: str) -> None:
    """2xx with a healthy status word: done at the first check."""
    result, endpoint, _ = wait([ok_json(status)])
    assert result.ok
    assert (result.status_code, result.attempts) == (200, 1)
    assert json.loads(result.body) == {"status": status}
    assert str(endpoint.requests[0].url) == URL


@pytest.mark.parametrize("status", ["degraded", "starting", "down", "error"])
def test_json_status_not_ok_is_unhealthy_despite_200(status: str) -> None:
    """Some services answer 200 {"status": "degraded"}; that is not the all-clear."""
    result, endpoint, _ = wait([ok_json(status)], timeout=5)
    assert not result.ok
    assert result.status_code == 200
    assert result.attempts == len(endpoint.requests) > 1
    assert status in result.describe()


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="OK"),
        httpx.Response(204),
        httpx.Response(200, json={"version": "2.3.1"}),
        httpx.Response(200, json=["fine"]),
    ],
)
def test_2xx_without_a_status_field_is_healthy(response: httpx.Response) -> None:
    """Plain text, empty, or JSON without `status`: the runbook's `curl -f` would pass."""
    result, _, _ = wait([response])
    assert result.ok and result.attempts == 1


@pytest.mark.parametrize("code", [500, 502, 503, 404, 301])
def test_non_2xx_is_unhealthy(code: int) -> None:
    """`curl -f` fails on these; so does the probe, and it says what it last saw."""
    result, _, _ = wait([httpx.Response(code, text="Service Unavailable")], timeout=3)
    assert not result.ok
    assert result.status_code == code
    assert f"HTTP {code}" in result.describe()
    assert "Service Unavailable" in result.describe()


def test_connection_errors_are_retried_until_the_timeout() -> None:
    """A service that is still starting refuses connections; keep asking, then report the error."""
    result, endpoint, time = wait([httpx.ConnectError], timeout=5, interval=1)
    assert not result.ok
    assert result.status_code is None
    assert result.error is not None and "ConnectError" in result.error
    assert result.attempts == len(endpoint.requests) >= 5
    assert time.sleeps == [1.0] * (result.attempts - 1)
    assert "ConnectError" in result.describe()


def test_becomes_healthy_on_the_third_attempt() -> None:
    """Refused, then 503 while warming up, then ok: healthy, after exactly three checks."""
    result, endpoint, time = wait([httpx.ConnectError, httpx.Response(503), ok_json("ok")], timeout=30, interval=2)
    assert result.ok
    assert result.attempts == 3 == len(endpoint.requests)
    assert result.seconds == pytest.approx(4.0)
    assert time.sleeps == [2.0, 2.0]
    assert "after 3 check(s)" in result.describe()


@pytest.mark.parametrize("timeout, interval", [(1, 1.0), (2, 0.5), (10, 1.0), (7, 3.0), (60, 1.0)])
def test_never_runs_past_the_timeout_when_unhealthy(timeout: float, interval: float) -> None:
    """The runner's time budget is honoured for every combination of timeout and interval."""
    result, _, _ = wait([httpx.Response(503)], timeout=timeout, interval=interval)
    assert not result.ok
    assert result.seconds <= timeout


def test_slow_requests_do_not_stretch_the_deadline() -> None:
    """A hanging endpoint eats the budget with each request; the probe still stops in time."""
    result, endpoint, _ = wait([ok_json("ok")], timeout=12, latency=30.0, interval=1)
    assert not result.ok
    assert result.error is not None and "ReadTimeout" in result.error
    assert all(r.extensions["timeout"]["read"] <= 5.0 for r in endpoint.requests)


def test_a_slow_but_healthy_answer_still_counts() -> None:
    """2s to answer is fine when the budget allows it."""
    result, _, _ = wait([ok_json("ok")], timeout=10, latency=2.0)
    assert result.ok
    assert result.seconds == pytest.approx(2.0)


def test_body_in_the_result_is_clipped() -> None:
    """A 1 MB error page does not end up in the journal and the channel."""
    result, _, _ = wait([httpx.Response(500, text="x" * 1_000_000)], timeout=1)
    assert not result.ok
    assert len(result.body) <= 300
