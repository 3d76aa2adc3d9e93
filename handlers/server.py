"""Serving the Bolt app: HTTP with a production WSGI server (waitress), or Socket Mode.

HTTP mode answers `POST /slack/events` (commands and interactivity), `GET /healthz` and
`GET /metrics` (Prometheus; read from the journal, see bot/metrics.py), on a
configurable host (127.0.0.1 by default: put a TLS-terminating proxy in front, as Slack calls
an https URL). Bolt's own `app.start()` is a development server listening on every address.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.foreground import Foreground
from bot.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
SLOW_ANSWER_MS = 1000

StartResponse = Callable[..., Any]


def wsgi_app(
    app: App, foreground: Foreground, metrics: Callable[[], bytes] | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """Each Slack request counts as a caller being answered until Bolt has its ack (listeners
    ack before they return): background work waits for the end of a burst, not the acks."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            return _answer(start_response, json.dumps({"ok": True}).encode(), "application/json")
        if environ.get("PATH_INFO") == "/metrics" and environ.get("REQUEST_METHOD") == "GET" and metrics:
            return _answer(start_response, metrics(), METRICS_CONTENT_TYPE)
        with foreground.answering():
            return slack(environ, _timed(start_response))

    return application


def _answer(start_response: StartResponse, body: bytes, content_type: str) -> list[bytes]:
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _timed(start_response: StartResponse) -> StartResponse:
    """Adds `Server-Timing: app;dur=…` (ms from the app receiving the request to its answer), and
    warns about answers that come close to Slack's 3-second limit."""
    began = time.perf_counter()

    def timed_start_response(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
        elapsed_ms = (time.perf_counter() - began) * 1000
        if elapsed_ms > SLOW_ANSWER_MS:
            log.warning("a Slack request took %.0f ms to answer (Slack gives up at 3000 ms)", elapsed_ms)
        return start_response(status, [*headers, ("Server-Timing", f"app;dur={elapsed_ms:.1f}")], *rest)

    return timed_start_response


def serve_http(
    app: App, foreground: Foreground, host: str, port: int, threads: int = 16,
    metrics: Callable[[], bytes] | None = None,
) -> None:
    log.info("rollbot serving Slack on http://%s:%d%s", host, port, EVENTS_PATH)
    waitress.serve(wsgi_app(app, foreground, metrics), host=host, port=port, threads=threads, ident="rollbot")


def serve_socket_mode(app: App, foreground: Foreground, app_token: str) -> None:
    _SocketMode(app, foreground, app_token).start()


class _SocketMode(SocketModeHandler):
    """Bolt's Socket Mode handler; each envelope counts as a caller until it is acked."""

    def __init__(self, app: App, foreground: Foreground, app_token: str) -> None:
        super().__init__(app, app_token)
        self._foreground = foreground

    def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        with self._foreground.answering():
            super().handle(client, req)
