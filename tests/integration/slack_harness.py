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
from tests.slackapi.signing import Reply, block_action, post, signed_headers, slash_command, view_submission
from tests.slackapi.socket_mode import FakeSocketMode

SIGNING_SECRET = "test-signing-secret-8f2c-d41a96be07"
BOT_TOKEN = "xoxb-test-000000000000-rollbot"
APP_TOKEN = "xapp-1-A0ROLLBOT-000000000000-test"
COMMAND_CHANNEL = "C0PLANS000"
INCIDENT_CHANNEL = "C0INCIDENT"


@dataclass
class Bot:
    deployed: Deployment
    slack: FakeSlack
    prism: Prism | None
    port: int
    process: subprocess.Popen[str]
    log_file: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def command(self, text: str, user: str, channel: str = COMMAND_CHANNEL, response_id: str | None = None) -> Reply:
        body = slash_command(text, user, channel, self.slack.response_url(response_id))
        return post(self.events_url, body, signed_headers(body, SIGNING_SECRET))

    def click(
        self, action_id: str, run_id: str, user: str, message: dict[str, Any], channel: str = COMMAND_CHANNEL
    ) -> Reply:
        body = block_action(action_id, run_id, user, channel, message["ts"], self.slack.response_url(), message=message)
        return post(self.events_url, body, signed_headers(body, SIGNING_SECRET))

    def open_form(self, user: str, timeout: float = 30) -> dict[str, Any]:
        """`/rollback` with no text, and the form it opened (as views.open received it)."""
        opened = len(self.slack.views())
        reply = self.command("", user)
        assert reply.status == 200, reply
        return wait_for(lambda: self.slack.views()[opened:], timeout, "the form opened")[-1]

    def submit_form(self, user: str, view: dict[str, Any], values: dict[str, Any]) -> Reply:
        body = view_submission(user, view, values)
        return post(self.events_url, body, signed_headers(body, SIGNING_SECRET))

    def plan_message(self, run_hint: str, timeout: float = 60) -> dict[str, Any]:
        """The newest plan message in the command channel whose header names `run_hint`."""
        return wait_for(
            lambda: next(
                (m for m in reversed(self.slack.messages(COMMAND_CHANNEL)) if run_hint in str(m.get("blocks", ""))),
                None,
            ),
            timeout,
            f"a plan message mentioning {run_hint}",
        )

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
    deployed: Deployment,
    slack: FakeSlack,
    prism: Prism | None,
    extra_env: dict[str, str] | None = None,
    log_name: str = "serve.log",
) -> Iterator[Bot]:
    """`rollbot serve` in HTTP mode, its Web API calls going through Prism (or, without one, to
    the fake directly: for benchmarks, where Prism's own CPU would be load on the machine)."""
    port = free_port()
    env = {"SLACK_API_URL": (prism or slack).url, **(extra_env or {})}
    log_file = deployed.folder / log_name
    with _serve(deployed, env, log_file, "--port", str(port)) as process:
        wait_for(lambda: _healthz(port), 60, "rollbot serve answering /healthz")
        yield Bot(deployed, slack, prism, port, process, log_file)


@contextmanager
def serving_socket_mode(
    deployed: Deployment, slack: FakeSlack, socket_mode: FakeSocketMode
) -> Iterator[subprocess.Popen[str]]:
    """`rollbot serve` in Socket Mode: SLACK_APP_TOKEN set, so it listens on no port and dials
    the websocket `apps.connections.open` hands out. Its Web API is the fake itself: Slack's
    published spec has no `apps.connections.open` for Prism to check."""
    env = {"SLACK_API_URL": slack.url, "SLACK_APP_TOKEN": APP_TOKEN}
    with _serve(deployed, env, deployed.folder / "serve.log") as process:
        socket_mode.wait_for_connection(timeout=60)
        yield process


@contextmanager
def _serve(
    deployed: Deployment, extra_env: dict[str, str], log_file: Path, *arguments: str
) -> Iterator[subprocess.Popen[str]]:
    env = {**deployed.env(), "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, **extra_env}
    log = log_file.open("w")
    process = subprocess.Popen(
        deployed.command("serve", *arguments),
        cwd=deployed.folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
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
