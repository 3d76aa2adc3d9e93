"""The Socket Mode fake, tested with the client Bolt's SocketModeHandler uses: slack_sdk's
builtin SocketModeClient, which asks `apps.connections.open` for the URL and acks envelopes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.signing import slash_command_fields
from tests.slackapi.socket_mode import FakeSocketMode

APP_TOKEN = "xapp-1-A0ROLLBOT-1-test"


@pytest.fixture()
def endpoints() -> Iterator[tuple[FakeSocketMode, FakeSlack]]:
    with FakeSocketMode() as socket_mode, FakeSlack(socket_mode_url=socket_mode.url) as slack:
        yield socket_mode, slack


def test_connections_open_gives_the_socket_url_to_app_tokens_only(endpoints: tuple[FakeSocketMode, FakeSlack]) -> None:
    socket_mode, slack = endpoints
    assert WebClient(base_url=slack.url).apps_connections_open(app_token=APP_TOKEN)["url"] == socket_mode.url
    with pytest.raises(SlackApiError) as refused:
        WebClient(base_url=slack.url).apps_connections_open(app_token="xoxb-a-bot-token")
    assert refused.value.response["error"] == "not_allowed_token_type"


def test_sdk_client_connects_gets_the_envelope_and_its_ack_is_kept(endpoints: tuple[FakeSocketMode, FakeSlack]) -> None:
    socket_mode, slack = endpoints
    seen: list[SocketModeRequest] = []
    handled = threading.Event()

    def on_request(client: SocketModeClient, request: SocketModeRequest) -> None:
        seen.append(request)
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id, payload={"text": "ok"}))
        handled.set()

    client = SocketModeClient(app_token=APP_TOKEN, web_client=WebClient(base_url=slack.url))
    client.socket_mode_request_listeners.append(on_request)
    try:
        client.connect()
        socket_mode.wait_for_connection(timeout=10)
        fields = slash_command_fields("status", "U0ALICE01", "C0123ABCD", slack.response_url())
        envelope_id = socket_mode.send("slash_commands", fields, accepts_response_payload=True)
        assert socket_mode.ack(envelope_id, timeout=10) == {"envelope_id": envelope_id, "payload": {"text": "ok"}}
    finally:
        client.close()
    assert handled.is_set()
    assert [(r.type, r.envelope_id, r.payload, r.accepts_response_payload) for r in seen] == [
        ("slash_commands", envelope_id, fields, True)
    ]


def test_a_connection_with_another_ticket_is_refused(endpoints: tuple[FakeSocketMode, FakeSlack]) -> None:
    socket_mode, _ = endpoints
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with (
        connect(socket_mode.url.replace(socket_mode.ticket, "forged"), compression=None) as stranger,
        pytest.raises(ConnectionClosed),
    ):
        stranger.recv(timeout=5)
    assert socket_mode.connections == 0
