"""How rollbot authenticates to Jira (issue 14): JIRA_TOKEN without JIRA_USER is a Data Center
personal access token, sent as a bearer; with JIRA_USER it is Basic; Jira Cloud takes no bearer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from bot.config import Config, JiraConfig, Settings, TicketsConfig
from bot.errors import ConfigError
from bot.reporting.jira_tickets import JiraTickets
from bot.wiring import ticket_sink


class _ServerInfo(BaseHTTPRequestHandler):
    seen: list[str]
    deployment = "Server"

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        body = json.dumps({"deploymentType": self.deployment, "version": "9.12.0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=["Server", "Cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str], str]]:
    seen: list[str] = []
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Info", (_ServerInfo,), {"seen": seen, "deployment": request.param})
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen, request.param
    server.shutdown()


def jira_config(deployment: str = "auto") -> Config:
    return Config(targets={}, tickets=TicketsConfig(kind="jira", project="OPS", jira=JiraConfig(deployment=deployment)))  # type: ignore[arg-type]


def test_a_token_without_a_user_is_a_bearer_for_data_center_and_refused_by_cloud(
    jira: tuple[str, list[str], str],
) -> None:
    url, seen, deployment = jira
    sink = ticket_sink(jira_config(), Settings(jira_url=url, jira_token=SecretStr("pat-secret-value")))
    assert isinstance(sink, JiraTickets)
    if deployment == "Cloud":
        with pytest.raises(ConfigError, match="Jira Cloud, which takes JIRA_USER"):
            sink.deployment()
    else:
        assert sink.deployment() == "datacenter"
    assert seen == ["Bearer pat-secret-value"]


def test_a_user_and_token_are_basic_and_the_deployment_is_read_once(jira: tuple[str, list[str], str]) -> None:
    url, seen, deployment = jira
    sink = ticket_sink(
        jira_config(),
        Settings(jira_url=url, jira_user=SecretStr("me@example.com"), jira_token=SecretStr("api-token-value")),
    )
    assert isinstance(sink, JiraTickets)
    assert sink.deployment() == ("cloud" if deployment == "Cloud" else "datacenter")
    assert sink.deployment() == sink.deployment()
    assert [auth.split(" ")[0] for auth in seen] == ["Basic"], "serverInfo is asked once"


def test_configured_cloud_without_a_user_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="JIRA_USER"):
        ticket_sink(jira_config("cloud"), Settings(jira_url="http://127.0.0.1:9", jira_token=SecretStr("t-value")))


def test_configured_deployment_asks_no_server_info(jira: tuple[str, list[str], str]) -> None:
    url, seen, _ = jira
    sink = ticket_sink(jira_config("datacenter"), Settings(jira_url=url, jira_token=SecretStr("pat-value")))
    assert isinstance(sink, JiraTickets) and sink.deployment() == "datacenter" and seen == []
