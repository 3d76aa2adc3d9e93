"""The real Bolt app and door, over a core with fake Docker, talking to the project's fake Slack
through Prism with Slack's spec: fast scenario tests of what people see in Slack.

Requests reach the door byte for byte as Slack sends them (form-encoded, signed); every Web API
call rollbot makes goes through `prism proxy`, whose violations a test reads with `mark()` and
`violations(since=...)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.config import Config, Settings
from bot.core.rollbot import Rollbot
from handlers.app import build_app
from handlers.server import Answer, Door
from storage import Journal, connect
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism
from tests.slackapi.signing import block_action, signed_headers, slash_command

from .fakes import FakeHealth, World, make_world

SECRET = "slackux-test-signing-secret-7c1e90ab"
PLANS, INCIDENT = "C0PLANS001", "C0INCIDENT"
REQUESTER, APPROVER, GROUPIE, STRANGER = "U0ALICE01", "U0BOB0001", "U0GROUPIE1", "U0STRANGER"
ONCALL_GROUP = "S0ONCALL00"


def wait(probe: Callable[[], Any], timeout: float = 20, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not seen within {timeout}s")


class Bot:
    def __init__(self, slack: FakeSlack, api_url: str, world: World, journal: Journal, config: Config) -> None:
        settings = Settings(
            slack_bot_token=SecretStr("xoxb-slackux-test"),
            slack_signing_secret=SecretStr(SECRET),
            slack_api_url=api_url,
        )
        self.world, self.journal, self.slack = world, journal, slack
        self.rollbot = Rollbot(config, journal, world.systems(), FakeHealth(world.compose, {"2.3.1", "2.2.0"}))
        self.app, self.services = build_app(settings, self.rollbot)
        self.door = Door(self.app, SECRET, self.services.tell)

    def send(self, body: str) -> tuple[Answer, float]:
        """POST a signed body to the door; the answer and the seconds it took."""
        headers = signed_headers(body.encode(), SECRET)
        started = time.monotonic()
        answer = self.door.answer(
            body.encode(),
            "application/x-www-form-urlencoded",
            headers["X-Slack-Request-Timestamp"],
            headers["X-Slack-Signature"],
        )
        return answer, time.monotonic() - started

    def command(
        self, text: str, user: str = REQUESTER, channel: str = PLANS, trigger_id: str | None = None
    ) -> tuple[Answer, float]:
        return self.send(slash_command(text, user, channel, self.slack.response_url(), trigger_id=trigger_id))

    def click(self, action_id: str, value: str, message: dict[str, Any], user: str, channel: str = PLANS) -> Answer:
        body = block_action(action_id, value, user, channel, message["ts"], self.slack.response_url(), message=message)
        return self.send(body)[0]

    def plan_message(self, hint: str = "Rollback plan") -> dict[str, Any]:
        return wait(
            lambda: next((m for m in reversed(self.slack.messages(PLANS)) if hint in str(m.get("blocks", ""))), None),
            what=f"a plan message with {hint!r}",
        )

    def close(self) -> None:
        self.services.outbox.stop()
        self.rollbot.shutdown()


@contextmanager
def slack_bot(
    tmp_path: Path,
    slack: FakeSlack,
    prism: Prism | None = None,
    edit: Callable[[Config], Config] | None = None,
    **target: Any,
) -> Iterator[Bot]:
    """A bot on a fresh journal; `target` overrides the engine's settings, `edit` the config."""
    world = make_world(tmp_path, incident_channel=INCIDENT, **target)
    config = edit(world.config) if edit else world.config
    engine = connect(f"sqlite:///{tmp_path}/journal.db")
    bot = Bot(slack, (prism or slack).url, world, Journal(engine), config)
    try:
        yield bot
    finally:
        bot.close()
        engine.dispose()


def button(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    for block in message.get("blocks", []):
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element
    return None


def spec_complaints(prism: Prism, since: int) -> list[str]:
    """Prism's complaints about rollbot's requests since `since` (files v2 included: see
    tests/slackapi/contracts/README.md)."""
    return [str(v) for v in prism.violations(since=since)]
