"""Serving the Bolt app: HTTP with a production WSGI server (waitress), or Socket Mode.

HTTP mode answers `POST /slack/events` (commands and interactivity), `GET /healthz` and
`GET /metrics` (Prometheus; read from the journal, see bot/reporting/metrics.py), on a
configurable host (127.0.0.1 by default: put a TLS-terminating proxy in front, as Slack calls
an https URL). Bolt's own `app.start()` is a development server listening on every address.

Between the HTTP server and Bolt stands a door. In this order, so that nobody who lacks the
signing secret gets any of rollbot's parsing to work on:

1. waitress refuses a body over `MAX_BODY_BYTES` (413) from its Content-Length, before reading it;
2. Slack's TLS probe (`ssl_check=1`, which Slack does not sign) is recognised by its exact bytes
   and answered 200, acting on nothing;
3. the signature is verified over the exact bytes received; an unsigned request gets 401 and its
   body is never decoded, split into fields or read as JSON;
4. only then does `handlers.inbound` read the body (safe against deep nesting), the door answers
   what it refuses itself (200 with the reason: Slack shows a slash command's answer to the
   person; a click's refusal also goes to them as an ephemeral message) and hands Bolt only
   checked fields.

Whatever Slack sends, a signed request is answered 200 and never with a traceback.

The signing secret is checked when the door is built (`signing_key`): a missing, short or
placeholder secret would let anyone sign, so `rollbot serve` refuses to start in HTTP mode.
Socket Mode does not use it: Slack's envelopes arrive over a websocket that rollbot opened with
the app-level token, and are not signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import waitress
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.core.foreground import Foreground
from bot.errors import ConfigError, report_unexpected
from bot.reporting.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from handlers.inbound import Checked, Refusal, read

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
SLOW_ANSWER_MS = 1000
MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are far smaller; a bigger body is not from Slack
MAX_TIMESTAMP_DIGITS = 12
MAX_AGE_SECONDS = 5 * 60  # Slack's rule, as Bolt applies it
# Slack's TLS probe, unsigned: `ssl_check=1&token=…` (the token is the legacy verification token).
SSL_CHECK = re.compile(rb"ssl_check=1(?:&token=[A-Za-z0-9]{0,64})?")
MIN_SECRET_CHARS = 32  # what Slack issues: 32 hex digits
MIN_DISTINCT_CHARS = 8
# Words of hand-written stand-ins, compared with letters and digits only, in lower case.
PLACEHOLDER_WORDS = (
    "changeme",
    "replaceme",
    "placeholder",
    "example",
    "xxx",
    "yoursecret",
    "yoursigning",
    "secretgoeshere",
    "fillmein",
    "insert",
    "redacted",
)
# Secrets printed in public documentation (Slack's own example of request signing).
PUBLISHED_SECRETS = frozenset({"8f742231b10e8888abcd99yyyzzz85a5"})

StartResponse = Callable[..., Any]
Tell = Callable[[str, str, str], None]  # channel, user, text


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = "application/json;charset=utf-8"


class Door:
    """Signature check, reading and refusals in front of Bolt (see the module docstring)."""

    def __init__(
        self, app: App, signing_secret: str, tell: Tell | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._app = app
        self._key = signing_key(signing_secret)
        self._tell = tell
        self._clock = clock

    def __repr__(self) -> str:
        return "Door(signing secret withheld)"

    def answer(self, raw: bytes, content_type: str, timestamp: str, signature: str) -> Answer:
        """The signature is checked before the body is read in any way (see the module docstring)."""
        if SSL_CHECK.fullmatch(raw):
            return Answer(200, "", "text/plain;charset=utf-8")  # Slack's TLS probe: unsigned, acts on nothing
        if not self._signed(raw, timestamp, signature):
            return Answer(401, json.dumps({"error": "invalid request"}))
        try:
            inbound = read(raw, content_type)
            if isinstance(inbound, Refusal):
                return self._refuse(inbound)
            return self._dispatch(inbound)
        except Exception as error:  # noqa: BLE001 - the last sink: a signed request never gets a 5xx
            return Answer(200, json.dumps({"text": report_unexpected(error, "answering a Slack request")}))

    def _signed(self, raw: bytes, timestamp: str, signature: str) -> bool:
        """Slack's v0 signature: HMAC-SHA256 over `v0:{timestamp}:{body}`, the body as the bytes
        received (UTF-8 or not); a request more than 5 minutes old or new is refused."""
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
            return False
        if abs(self._clock() - int(timestamp)) > MAX_AGE_SECONDS or not signature.isascii():
            return False
        expected = "v0=" + hmac.new(self._key, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    def _refuse(self, refusal: Refusal) -> Answer:
        log.info("refused a Slack request: %s", refusal.text)
        if refusal.slash_command:
            return Answer(200, json.dumps({"response_type": "ephemeral", "text": refusal.text}))
        if self._tell is not None and refusal.user and refusal.channel:
            self._tell(refusal.channel, refusal.user, f":no_entry: {refusal.text}")
        return Answer(200, json.dumps({"text": refusal.text}))

    def _dispatch(self, checked: Checked) -> Answer:
        request = BoltRequest(body=json.dumps(checked.body), headers={"content-type": "application/json"})
        response: BoltResponse = self._app.dispatch(request)
        content_type = response.first_headers().get("content-type", "text/plain;charset=utf-8")
        if response.status >= 500:
            log.error("Bolt answered %d; answering 200 instead (the error handler logged why)", response.status)
            return Answer(200, json.dumps({"text": "rollbot could not handle this request; it is logged."}))
        return Answer(response.status, response.body, content_type)


def signing_key(secret: str | None) -> bytes:
    """The key requests are verified with. Anyone who knows or guesses it can act as Slack, so
    an unset, empty, short, repetitive or placeholder secret is refused with a `ConfigError`
    that says why (never what the secret is)."""
    problem = _weakness(secret or "")
    if problem:
        raise ConfigError(
            f"environment: SLACK_SIGNING_SECRET {problem}; rollbot serve (HTTP mode) refuses to start. "
            "Copy the app's Signing Secret from api.slack.com/apps → Basic Information"
        )
    return (secret or "").encode("utf-8")


def _weakness(secret: str) -> str | None:
    if not secret.strip():
        return "is not set"
    if len(secret) < MIN_SECRET_CHARS:
        return f"is {len(secret)} characters long, shorter than Slack's {MIN_SECRET_CHARS}"
    letters = "".join(char for char in secret.lower() if char.isalnum())
    if secret in PUBLISHED_SECRETS or any(word in letters for word in PLACEHOLDER_WORDS):
        return "is a placeholder or a published example, not the app's secret"
    if len(set(secret)) < MIN_DISTINCT_CHARS:
        return f"uses fewer than {MIN_DISTINCT_CHARS} different characters, not a secret Slack issued"
    return None


def wsgi_app(
    door: Door, foreground: Foreground, metrics: Callable[[], bytes] | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """Each Slack request counts as a caller being answered until Bolt has its ack (listeners
    ack before they return): background work waits for the end of a burst, not the acks."""

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == "/healthz" and method == "GET":
            return _send(start_response, Answer(200, json.dumps({"ok": True})))
        if path == "/metrics" and method == "GET" and metrics:
            return _send(start_response, Answer(200, metrics().decode("utf-8"), METRICS_CONTENT_TYPE))
        if path != EVENTS_PATH:
            return _send(start_response, Answer(404, "Not Found", "text/plain;charset=utf-8"))
        if method != "POST":
            return _send(start_response, Answer(405, "Method Not Allowed", "text/plain;charset=utf-8"))
        respond = _timed(start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _send(respond, Answer(400, "Bad Request", "text/plain;charset=utf-8"))
        if length > MAX_BODY_BYTES:
            return _send(respond, Answer(413, "Payload Too Large", "text/plain;charset=utf-8"))
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        with foreground.answering():
            answer = door.answer(
                raw,
                environ.get("CONTENT_TYPE") or "",
                environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "",
                environ.get("HTTP_X_SLACK_SIGNATURE") or "",
            )
        return _send(respond, answer)

    return application


def _send(start_response: StartResponse, answer: Answer) -> list[bytes]:
    body = answer.body.encode("utf-8")
    try:
        reason = HTTPStatus(answer.status).phrase
    except ValueError:
        reason = "Unknown"
    start_response(
        f"{answer.status} {reason}", [("Content-Type", answer.content_type), ("Content-Length", str(len(body)))]
    )
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
    door: Door,
    foreground: Foreground,
    host: str,
    port: int,
    threads: int = 16,
    metrics: Callable[[], bytes] | None = None,
) -> None:
    log.info("rollbot serving Slack on http://%s:%d%s", host, port, EVENTS_PATH)
    # waitress's own cap (default 1 GiB) refuses a longer Content-Length with 413 before reading
    # the body, and a chunked body once it grows past it; it refuses lengths >= the cap.
    waitress.serve(
        wsgi_app(door, foreground, metrics),
        host=host,
        port=port,
        threads=threads,
        ident="rollbot",
        max_request_body_size=MAX_BODY_BYTES + 1,
    )


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
