"""The composition root: the one place real clients are built and handed to the core."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.adapters.compose import ComposeCli
from bot.adapters.docker_host import DockerHost
from bot.adapters.health import HealthProbe
from bot.adapters.prometheus import PrometheusClient
from bot.adapters.regression_eval import EvalRunner
from bot.config import Config, Settings, TargetConfig, load_config, load_settings
from bot.core.rollbot import Rollbot
from bot.errors import ConfigError
from bot.planning.plan import Systems
from bot.ports import TicketSink
from bot.redaction import TextRedactor, secret_forms
from bot.reporting.jira_tickets import JiraTickets
from bot.reporting.tickets import FileTickets, TicketDesk
from storage import Journal, connect
from storage.tickets import TicketOutbox


def build_rollbot(config_file: Path) -> Rollbot:
    config = load_config(config_file)
    settings = load_settings()
    engine = connect(settings.database_url.get_secret_value())
    journal = Journal(engine)

    docker = DockerHost()

    def compose_for(target: TargetConfig) -> ComposeCli:
        return ComposeCli(target.compose_file, docker.service_container_ids, target.compose_files)

    systems = Systems(docker=docker, compose_for=compose_for, metrics=PrometheusClient(), evals=EvalRunner())
    desk = TicketDesk(
        TicketOutbox(engine),
        ticket_sink(config, settings),
        journal.run,
        config.evidence_dir,
        TextRedactor(secret_forms(settings)),
        config.tickets.attachment_cap_bytes,
        search_delay=timedelta(seconds=config.tickets.jira.search_delay_seconds),
    )
    return Rollbot(config, journal, systems, HealthProbe(), tickets=desk)


def ticket_sink(config: Config, settings: Settings) -> TicketSink:
    """Files, or Jira with basic credentials (Cloud: email and API token; Data Center: user and
    password or token) or, with JIRA_TOKEN and no JIRA_USER, a Data Center personal access token."""
    tickets = config.tickets
    if tickets.kind == "file":
        return FileTickets(tickets.directory)
    if not (settings.jira_url and settings.jira_token):
        raise ConfigError(
            "environment: tickets.kind is jira, so JIRA_URL and JIRA_TOKEN must be set (and JIRA_USER, "
            "unless JIRA_TOKEN is a Data Center personal access token)"
        )
    server, user, token = settings.jira_url, settings.jira_user, settings.jira_token
    if user is None and tickets.jira.deployment == "cloud":
        raise ConfigError(
            "environment: Jira Cloud takes JIRA_USER (the account's email) with JIRA_TOKEN (an API token)"
        )

    def connect_jira() -> Any:
        from jira import JIRA

        # No retries inside the library: the ticket desk retries across runs and restarts.
        credentials: dict[str, Any] = (
            {"basic_auth": (user.get_secret_value(), token.get_secret_value())}
            if user is not None
            else {"token_auth": token.get_secret_value()}
        )
        return JIRA(server=server, get_server_info=False, max_retries=0, timeout=20, **credentials)

    assert tickets.project is not None
    return JiraTickets(
        connect_jira,
        server,
        tickets.project,
        tickets.issue_type,
        tickets.labels,
        tickets.fields,
        tickets.jira.deployment,
        bearer=user is None,
    )
