"""Prometheus' HTTP API: instant and range queries, nothing else.

rollbot reads the Engine's error rate and latency here to judge whether a rollback is needed,
whether its errors recovered, and to keep the bad window's series. Every failure (no answer,
an HTTP error, a query Prometheus refuses, a body that is not its JSON) is one `MetricsError`
that names the server and what went wrong, so a verdict can say which criterion it could not read.
The HTTP client is injected, as in the health probe.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.errors import MetricsError
from bot.ports import Series


class PrometheusClient:
    def __init__(self, client: httpx.Client | None = None, timeout: float = 5.0) -> None:
        self._client = client or httpx.Client(follow_redirects=False)
        self._timeout = timeout

    def instant(
        self, base_url: str, query: str, at: datetime | None = None, timeout: float | None = None
    ) -> float | None:
        """The query's value at `at` (now by default), summed over its series; None when it has no data."""
        params = {"query": query, **({"time": f"{at.timestamp():.3f}"} if at else {})}
        result = self._ask(base_url, "query", params, timeout)
        values = [_number(item["value"][1]) for item in result if "value" in item]
        finite = [value for value in values if value is not None]
        return sum(finite) if finite else None

    def series(
        self, base_url: str, query: str, start: datetime, end: datetime, step: float, timeout: float | None = None
    ) -> Series:
        """The query's values from `start` to `end` every `step` seconds; several series are summed."""
        params = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{max(step, 0.001):.3f}",
        }
        summed: dict[float, float] = {}
        for item in self._ask(base_url, "query_range", params, timeout):
            for stamp, raw in item.get("values", []):
                value = _number(raw)
                if value is not None:
                    summed[float(stamp)] = summed.get(float(stamp), 0.0) + value
        return [(datetime.fromtimestamp(stamp, UTC), value) for stamp, value in sorted(summed.items())]

    def _ask(self, base_url: str, endpoint: str, params: dict[str, str], timeout: float | None) -> list[dict[str, Any]]:
        url = f"{base_url.rstrip('/')}/api/v1/{endpoint}"
        try:
            response = self._client.get(url, params=params, timeout=self._timeout if timeout is None else timeout)
        except httpx.HTTPError as error:
            raise MetricsError(f"Prometheus at {base_url} did not answer: {type(error).__name__}: {error}") from None
        try:
            body = response.json()
        except ValueError:
            raise MetricsError(f"Prometheus at {base_url} answered HTTP {response.status_code}, not JSON") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            problem = body.get("error") if isinstance(body, dict) else None
            raise MetricsError(
                f"Prometheus at {base_url} refused the query {params['query']!r}: "
                f"{problem or f'HTTP {response.status_code}'}"
            )
        data = body.get("data") or {}
        if data.get("resultType") == "scalar":
            return [{"value": data.get("result")}]
        result = data.get("result")
        return result if isinstance(result, list) else []


def _number(raw: object) -> float | None:
    """Prometheus writes values as strings; NaN and infinities (0/0, x/0) mean "no value"."""
    try:
        value = float(str(raw))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
