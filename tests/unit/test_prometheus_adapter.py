"""What the Prometheus adapter makes of its answers; the real server is in tests/integration."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from bot.adapters.prometheus import PrometheusClient
from bot.errors import MetricsError

URL = "http://127.0.0.1:9090"


def client(handler: httpx.MockTransport) -> PrometheusClient:
    return PrometheusClient(httpx.Client(transport=handler))


def answering(body: object, status: int = 200) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


def test_instant_sums_series_and_drops_nan() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"value": [1, "0.25"]}, {"value": [1, "NaN"]}, {"value": [1, "0.5"]}],
        },
    }
    assert client(answering(body)).instant(URL, "q") == 0.75


def test_an_empty_answer_is_no_data_not_an_error() -> None:
    body = {"status": "success", "data": {"resultType": "vector", "result": []}}
    assert client(answering(body)).instant(URL, "q") is None


def test_range_values_become_times() -> None:
    body = {"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1800000000, "2"]]}]}}
    start = datetime(2027, 1, 15, tzinfo=UTC)
    assert client(answering(body)).series(URL, "q", start, start, 1) == [(datetime.fromtimestamp(1800000000, UTC), 2.0)]


def test_a_refused_query_names_the_server_and_the_query() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}
    with pytest.raises(
        MetricsError, match=r"Prometheus at http://127.0.0.1:9090 refused the query 'rate\(x': parse error at char 3"
    ):
        client(answering(body, 400)).instant(URL, "rate(x")


def test_no_answer_is_a_metrics_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(
        MetricsError, match=re.escape("Prometheus at http://127.0.0.1:9090 did not answer: ConnectError")
    ):
        client(httpx.MockTransport(refuse)).instant(URL, "q")


def test_a_query_waits_no_longer_than_the_time_it_is_given() -> None:
    waited: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        waited.append(request.extensions["timeout"]["read"])
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": []}})

    prometheus = client(httpx.MockTransport(answer))
    prometheus.instant(URL, "q", timeout=1.5)
    prometheus.series(URL, "q", datetime(2027, 1, 15, tzinfo=UTC), datetime(2027, 1, 15, tzinfo=UTC), 1, timeout=0.25)
    prometheus.instant(URL, "q")
    assert waited == [1.5, 0.25, 5.0], "given times, then the client's own"
