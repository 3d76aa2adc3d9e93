"""The composition root: the one place real clients are built and handed to the core."""

from __future__ import annotations

from pathlib import Path

from bot.compose import ComposeCli
from bot.config import TargetConfig, load_config, load_settings
from bot.core import Rollbot
from bot.docker_host import DockerHost
from bot.health import HealthProbe
from bot.plan import Systems
from storage import Journal, connect


def build_rollbot(config_file: Path) -> Rollbot:
    config = load_config(config_file)
    settings = load_settings()
    journal = Journal(connect(settings.database_url.get_secret_value()))

    docker = DockerHost()

    def compose_for(target: TargetConfig) -> ComposeCli:
        return ComposeCli(target.compose_file, docker.service_container_id)

    systems = Systems(docker=docker, compose_for=compose_for)
    return Rollbot(config, journal, systems, HealthProbe())
