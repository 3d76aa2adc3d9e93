"""The Engine's `/health`, polled until it answers ok or the time is up.

"ok" means what the runbook's `curl -fsS … | jq` means: a 2xx answer. When the body is JSON
with a `status` field, that field must also say so ("ok", "healthy", "pass" or "up"), because
some services answer 200 with `{"status": "degraded"}`. The HTTP client is injected, so tests
can hand in an `httpx.Client` with a `MockTransport`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from bot.ports import HealthResult

HEALTHY_STATUSES = {"ok", "healthy", "pass", "up"}
POLL_INTERVAL_SECONDS = 0.25
BODY_EXCERPT_CHARS = 300


class HealthProbe:
    def __init__(
        self,
        client: httpx.Client | None = None,
        interval: float = POLL_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client or httpx.Client(follow_redirects=False)
        self._interval = interval
        self._clock = clock
        self._sleep = sleep

    def wait_until_healthy(self, url: str, timeout: float) -> HealthResult:
        """Poll until healthy; never run past `timeout` by more than one short request."""
        started = self._clock()
        deadline = started + timeout
        attempts = 0
        while True:
            attempts += 1
            request_timeout = min(5.0, max(deadline - self._clock(), 0.1))
            ok, code, body, error = self._check_once(url, request_timeout)
            if ok or self._clock() >= deadline:
                return HealthResult(ok, code, body, error, attempts, self._clock() - started)
            self._sleep(min(self._interval, max(deadline - self._clock(), 0.0)))

    def _check_once(self, url: str, timeout: float) -> tuple[bool, int | None, str, str | None]:
        try:
            response = self._client.get(url, timeout=timeout)
        except httpx.HTTPError as error:
            return False, None, "", f"{type(error).__name__}: {error}"[:BODY_EXCERPT_CHARS]
        body = response.text[:BODY_EXCERPT_CHARS]
        return response.is_success and _body_says_ok(response.text), response.status_code, body, None


def _body_says_ok(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return True
    if isinstance(data, dict) and "status" in data:
        return str(data["status"]).lower() in HEALTHY_STATUSES
    return True
