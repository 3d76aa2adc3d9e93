"""`rollbot serve` as Slack sees it: a process that gets signed requests and calls the Web API.

The Web API is the project's stateful fake Slack behind `prism proxy` with Slack's normalized
spec, so every call rollbot makes is checked against what Slack published. Requests to the bot
are built and signed exactly as Slack builds them.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from slack_sdk.models.blocks import Block

from tests.integration.demo import Deployment
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism, free_port
from tests.slackapi.signing import Reply, block_action, post, signed_headers, slash_command

SIGNING_SECRET = "test-signing-secret-8f2c"
BOT_TOKEN = "xoxb-test-000000000000-rollbot"
COMMAND_CHANNEL = "C0PLANS000"
INCIDENT_CHANNEL = "C0INCIDENT"


@dataclass
class Bot:
    deployed: Deployment
    slack: FakeSlack
    prism: Prism
    port: int
    process: subprocess.Popen[str]
    log_file: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def command(self, text: str, user: str, channel: str = COMMAND_CHANNEL, response_id: str | None = None) -> Reply:
        body = slash_command(text, user, channel, self.slack.response_url(response_id))
        return post(self.events_url, body, signed_headers(body, SIGNING_SECRET))

    def click(self, action_id: str, run_id: str, user: str, message: dict[str, Any], channel: str = COMMAND_CHANNEL) -> Reply:
        body = block_action(action_id, run_id, user, channel, message["ts"], self.slack.response_url(), message=message)
        return post(self.events_url, body, signed_headers(body, SIGNING_SECRET))

    def plan_message(self, run_hint: str, timeout: float = 60) -> dict[str, Any]:
        """The newest plan message in the command channel whose header names `run_hint`."""
        return wait_for(lambda: next(
            (m for m in reversed(self.slack.messages(COMMAND_CHANNEL)) if run_hint in str(m.get("blocks", ""))), None
        ), timeout, f"a plan message mentioning {run_hint}")

    def log(self) -> str:
        return self.log_file.read_text()


def button(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    for block in message.get("blocks", []):
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element
    return None


def assert_blocks_valid(messages: list[dict[str, Any]]) -> None:
    """Every message's blocks parse into slack_sdk's Block Kit models and validate."""
    for message in messages:
        for raw in message.get("blocks", []):
            block = Block.parse(raw)
            assert block is not None, raw
            block.validate_json()


def wait_for(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not seen within {timeout}s")


@contextmanager
def slack_web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with FakeSlack(usergroups={"S0ONCALL00": ["U0GROUPIE1"]}) as slack, Prism(slack.url) as prism:
        yield slack, prism


@contextmanager
def serving(
    deployed: Deployment, slack: FakeSlack, prism: Prism, extra_env: dict[str, str] | None = None,
    log_name: str = "serve.log",
) -> Iterator[Bot]:
    port = free_port()
    env = {**deployed.env(), "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": prism.url, **(extra_env or {})}
    env.pop("SLACK_APP_TOKEN", None)
    log_file = deployed.folder / log_name
    log = log_file.open("w")
    process = subprocess.Popen(
        deployed.command("serve", "--port", str(port)), cwd=deployed.folder, env=env,
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    bot = Bot(deployed, slack, prism, port, process, log_file)
    try:
        wait_for(lambda: _healthz(port), 60, "rollbot serve answering /healthz")
        yield bot
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _healthz(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
