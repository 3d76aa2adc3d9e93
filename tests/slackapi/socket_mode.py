"""A small Socket Mode endpoint for tests: the websocket Slack hands out from `apps.connections.open`.

Why: in Socket Mode the app dials out to Slack, and Slack delivers slash commands and clicks as
JSON envelopes over that websocket instead of signed HTTP requests; the app answers each
envelope with its `envelope_id` (plus a `payload` when the envelope accepts one) within 3
seconds, or Slack retries it. This server plays Slack's side on 127.0.0.1: it greets a new
connection with `hello`, sends the envelopes a test asks for, and keeps every message the app
sends back, so a test can read the ack of each envelope.

    with FakeSocketMode() as socket_mode, FakeSlack(socket_mode_url=socket_mode.url) as slack:
        ...  # start the app with SLACK_APP_TOKEN set and SLACK_API_URL=slack.url
        socket_mode.wait_for_connection(timeout=30)
        envelope_id = socket_mode.send("slash_commands", {"command": "/rollback", ...})
        assert socket_mode.ack(envelope_id, timeout=10) == {"envelope_id": envelope_id, "payload": {...}}

Envelope shape as Slack documents it for Socket Mode: `envelope_id`, `type` (`slash_commands`,
`interactive`, `events_api`), `payload` (the same fields the HTTP request would carry, as JSON)
and `accepts_response_payload`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

APP_ID = "A0ROLLBOT"


class FakeSocketMode:
    """Slack's Socket Mode websocket. `url` carries a one-time ticket, as Slack's URLs do; a
    connection to any other path or ticket is refused, so connecting proves the app used the URL
    that `apps.connections.open` returned."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.ticket = secrets.token_hex(8)
        self.received: list[dict[str, Any]] = []  # every JSON message the app sent, in order
        self.connections = 0
        self._server: Server | None = None
        self._connection: ServerConnection | None = None
        self._changed = threading.Condition()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/link/?ticket={self.ticket}&app_id={APP_ID}"

    def start(self) -> FakeSocketMode:
        # The builtin client of slack_sdk speaks no permessage-deflate; Slack does not need it either.
        self._server = serve(self._serve, self.host, 0, compression=None)
        self.port = self._server.socket.getsockname()[1]
        threading.Thread(target=self._server.serve_forever, name="fake-socket-mode", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_connection(self, timeout: float) -> None:
        """Block until an app holds the websocket (raises AssertionError after `timeout`)."""
        self._wait(lambda: self._connection is not None, timeout, "a Socket Mode connection")

    def send(self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False) -> str:
        """Deliver one envelope to the connected app; returns its envelope_id."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        connection = self._connection
        if connection is None:
            raise AssertionError("no app is connected to the Socket Mode endpoint")
        connection.send(json.dumps(envelope))
        return envelope_id

    def ack(self, envelope_id: str, timeout: float) -> dict[str, Any]:
        """The app's answer to one envelope (raises AssertionError if none came within `timeout`)."""
        return self._wait(
            lambda: next((m for m in self.received if m.get("envelope_id") == envelope_id), None),
            timeout,
            f"the ack of envelope {envelope_id}",
        )

    def _serve(self, connection: ServerConnection) -> None:
        if connection.request is None or connection.request.path != f"/link/?ticket={self.ticket}&app_id={APP_ID}":
            connection.close(code=1008, reason="unknown ticket")
            return
        with self._changed:
            self.connections += 1
            self._connection = connection
            self._changed.notify_all()
        connection.send(json.dumps(_hello(self.connections)))
        try:
            for message in connection:
                with self._changed:
                    self.received.append(json.loads(message))
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                if self._connection is connection:
                    self._connection = None

    def _wait(self, probe: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (found := probe()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what}: not seen within {timeout}s")
                self._changed.wait(left)
            return found


def _hello(connections: int) -> dict[str, Any]:
    """What Slack sends first on every new Socket Mode connection."""
    return {
        "type": "hello",
        "num_connections": connections,
        "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": APP_ID},
    }
