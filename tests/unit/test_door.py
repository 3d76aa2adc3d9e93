"""The door in front of Bolt, with the real Bolt app and listeners, a core over fakes and the
project's fake Slack Web API: signatures, refusals by name, and never a 5xx or a traceback."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.core.foreground import Foreground
from bot.core.rollbot import Rollbot
from bot.errors import ConfigError
from handlers.app import build_app
from handlers.ids import ActionId
from handlers.server import MAX_BODY_BYTES, Answer, Door, wsgi_app
from handlers.services import Services
from storage import Journal, RunStatus
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.signing import block_action, signed_headers, slash_command

from .fakes import FakeHealth, World

SECRET = "door-test-signing-secret-5e0c9a1b7d"
USER, CHANNEL = "U0ALICE01", "C0PLANS01"


class Served:
    def __init__(self, door: Door, services: Services, slack: FakeSlack) -> None:
        self.door, self.services, self.slack = door, services, slack

    def send(
        self,
        body: str | bytes,
        content_type: str = "application/x-www-form-urlencoded",
        secret: str = SECRET,
        timestamp: int | None = None,
    ) -> Answer:
        raw = body.encode() if isinstance(body, str) else body
        headers = signed_headers(raw, secret, timestamp)
        return self.door.answer(raw, content_type, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])

    def command(self, text: str, command: str = "/rollback") -> Answer:
        return self.send(slash_command(text, USER, CHANNEL, self.slack.response_url(), command=command))

    def click(self, action_id: str, value: str, message_ts: str = "1700000000.000100") -> Answer:
        return self.send(block_action(action_id, value, USER, CHANNEL, message_ts, self.slack.response_url()))

    def ephemeral(self, says: str, timeout: float = 10) -> str:
        """The ephemeral message saying `says`, once the work after the ack has sent it."""
        return _wait(lambda: next((e["text"] for e in self.slack.ephemerals() if says in e["text"]), None), timeout)


@pytest.fixture(scope="module")
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
def served(world: World, journal: Journal, fake_slack: FakeSlack) -> Iterator[Served]:
    rollbot = Rollbot(world.config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1"}))
    fake_slack.reset()
    with nullcontext(fake_slack) as slack:
        settings = Settings(
            slack_bot_token=SecretStr("xoxb-door-test"), slack_signing_secret=SecretStr(SECRET), slack_api_url=slack.url
        )
        app, services = build_app(settings, rollbot)
        yield Served(Door(app, SECRET, services.tell), services, slack)
        services.outbox.stop()
        rollbot.shutdown()


def text_of(answer: Answer) -> str:
    return str(json.loads(answer.body).get("text")) if answer.body.startswith("{") else answer.body


def test_requests_not_signed_with_the_secret_are_refused_with_401(served: Served) -> None:
    body = slash_command("help", USER, CHANNEL, served.slack.response_url())
    assert served.send(body, secret="not-the-secret").status == 401
    assert served.send(body, timestamp=int(time.time()) - 6 * 60).status == 401
    assert served.door.answer(body.encode(), "", "12ab", "v0=00").status == 401
    assert served.door.answer(body.encode(), "", str(int(time.time())), "v0=é").status == 401
    assert served.door.answer(b"\xff", "", str(int(time.time())), "").status == 401
    assert served.slack.calls_to("chat.postEphemeral") == []


def test_an_unsigned_body_is_not_read_at_all(served: Served) -> None:
    """200,000 nested `[` break a JSON parser: unsigned they must meet the signature check first."""
    nested = b"payload=" + b"[" * 200_000
    assert served.door.answer(nested, "", str(int(time.time())), "v0=" + "0" * 64).status == 401
    assert served.send(nested, secret="another-apps-signing-secret-00000").status == 401


def test_a_signed_body_nested_deeply_is_refused_by_name(served: Served) -> None:
    answer = served.send(b"payload=" + b"[" * 200_000)
    assert answer.status == 200
    assert text_of(answer) == "rollbot refused this request: `payload` is nested too deeply to be from Slack"
    answer = served.send(b'[{"a": ' * 100_000, "application/json")
    assert "the JSON body is nested too deeply to be from Slack" in text_of(answer)


def test_slacks_unsigned_tls_probe_is_answered_by_its_exact_bytes_only(served: Served) -> None:
    assert served.door.answer(b"ssl_check=1&token=abc123", "", "", "") == Answer(200, "", "text/plain;charset=utf-8")
    assert served.door.answer(b"ssl_check=1&command=%2Frollback", "", "", "").status == 401


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "changeme",
        "replace-me",
        "x" * 64,
        "8f742231b10e8888abcd99yyyzzz85a5",
        "your-slack-signing-secret-goes-here",
        "short-but-random-9f3a",
    ],
)
def test_a_door_is_not_built_on_a_secret_anyone_could_sign_with(served: Served, secret: str) -> None:
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET") as refused:
        Door(served.door._app, secret)
    assert not secret or secret not in str(refused.value)


def test_a_reason_that_says_payload_is_still_a_command(served: Served) -> None:
    answer = served.command("engine 2.3.1 payload service answers 500")
    assert answer.status == 200 and "Planning the rollback of engine to 2.3.1" in text_of(answer)


@pytest.mark.parametrize(
    "send, says",
    [
        (lambda s: s.command("engine 2.3.1", command="/deploy"), "`/deploy` is not a rollbot command"),
        (lambda s: s.command("payments 2.3.1"), "Unknown target `payments`"),
        (lambda s: s.command("drill <!channel> 2.4.0"), "Unknown target `&lt;!channel&gt;`"),
        (lambda s: s.command("engine <!channel>"), "'&lt;!channel&gt;' is not a Docker tag"),
        (lambda s: s.send('payload={"type":"view_closed","view":{}}'), "does not handle `view_closed`"),
        (lambda s: s.send('payload={"type":"view_submission","view":{}}'), "refused this form: `user.id` is missing"),
        (lambda s: s.send('payload={"type":"shortcut","callback_id":"x"}'), "does not handle `shortcut`"),
        (
            lambda s: s.send('{"type":"event_callback","event":{"type":"message"}}', "application/json"),
            "does not handle `event_callback`",
        ),
        (lambda s: s.send("payload={oops"), "`payload` is not valid JSON"),
    ],
)
def test_what_rollbot_does_not_handle_gets_a_200_that_names_it(served: Served, send: Any, says: str) -> None:
    answer = send(served)
    assert answer.status == 200
    assert says in text_of(answer)
    assert "Traceback" not in answer.body


def test_an_unknown_button_is_refused_to_the_person_who_clicked(served: Served) -> None:
    answer = served.click("rollback_reticulate", "20260101-000000-abcdef")
    assert answer.status == 200 and "no button `rollback_reticulate`" in text_of(answer)
    assert served.ephemeral("no button `rollback_reticulate`").startswith(":no_entry:")


def test_a_bad_click_field_is_refused_to_the_person_who_clicked(served: Served) -> None:
    payload = json.loads(dict(parse_qsl(block_action(ActionId.APPROVE, "r", USER, CHANNEL, "1.2", "")))["payload"])
    payload["actions"] = []
    answer = served.send("payload=" + json.dumps(payload))
    assert answer.status == 200 and "`actions` is empty" in text_of(answer)
    assert served.ephemeral("`actions` is empty").startswith(":no_entry:")


def test_a_run_id_that_does_not_exist_is_refused_by_id(served: Served) -> None:
    assert served.click(ActionId.APPROVE, "20990101-000000-ffffff").status == 200
    assert served.ephemeral("run '20990101-000000-ffffff' is not known").startswith(":no_entry:")


def test_a_button_whose_run_belongs_to_another_plan_is_refused(served: Served, journal: Journal) -> None:
    served.command("engine 2.3.1 first plan")
    served.services.outbox.drain(timeout=10)
    [run] = _wait(lambda: [r for r in journal.runs() if r.context.get("plan_message")])
    plan_ts = run.context["plan_message"]["ts"]
    served.click(ActionId.APPROVE, run.id, message_ts="1700000099.000100")
    assert served.ephemeral(f"run {run.id} (engine → 2.3.1) is not the plan on this message")
    assert journal.run(run.id).status is RunStatus.PLANNED

    served.click(ActionId.CANCEL, run.id, message_ts=plan_ts)
    _wait(lambda: journal.run(run.id).status is RunStatus.CANCELLED)


def test_a_listener_that_fails_answers_200_with_an_error_id_not_a_trace(served: Served) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("boom")

    served.services.rollbot.may_request = broken  # type: ignore[method-assign]
    answer = served.command("engine 2.3.1")
    assert answer.status == 200
    assert "unexpected error (id " in text_of(answer) and "boom" not in answer.body and "Traceback" not in answer.body


def test_the_http_layer_answers_without_5xx(served: Served) -> None:
    application = wsgi_app(served.door, Foreground())
    statuses: list[str] = []

    def call(method: str, path: str, body: bytes = b"", length: str | None = None) -> None:
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": length if length is not None else str(len(body)),
        }
        application(environ, lambda status, headers: statuses.append(status))

    call("GET", "/healthz")
    call("GET", "/slack/events")
    call("POST", "/elsewhere")
    call("POST", "/slack/events", length=str(MAX_BODY_BYTES + 1))
    call("POST", "/slack/events", length="many")
    call("POST", "/slack/events", b"command=%2Frollback")
    assert statuses == [
        "200 OK",
        "405 Method Not Allowed",
        "404 Not Found",
        "413 Request Entity Too Large",
        "400 Bad Request",
        "401 Unauthorized",
    ]


def _wait(probe: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("not reached in time")
