"""Tokens and passwords never appear in logs, exceptions, reprs or what rollbot hands to the
processes and tickets it makes. Each secret here is a recognisable value that a leak would show."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.compose import ComposeCli
from bot.config import Settings
from bot.evidence import redacted_inspect

BOT_TOKEN = "xoxb-SCANME-bot-7c1d9e"
SIGNING_SECRET = "SCANME-signing-52af0b"
APP_TOKEN = "xapp-SCANME-app-90d1"
JIRA_USER = "scanme-jira-user@example.com"
JIRA_TOKEN = "SCANME-jira-token-e83b"
DB_PASSWORD = "SCANME-db-pw-31c7"
DATABASE_URL = f"postgresql+psycopg://rollbot:{DB_PASSWORD}@127.0.0.1:1/rollbot"
EVERY_FORM = (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN, JIRA_USER, JIRA_TOKEN, DB_PASSWORD, "SCANME")


def leaks(*texts: str) -> list[str]:
    return [form for form in EVERY_FORM for text in texts if form in text]


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in (("SLACK_BOT_TOKEN", BOT_TOKEN), ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
                        ("SLACK_APP_TOKEN", APP_TOKEN), ("JIRA_USER", JIRA_USER), ("JIRA_TOKEN", JIRA_TOKEN),
                        ("DATABASE_URL", DATABASE_URL)):
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_settings_show_no_secret_however_they_are_printed(secret_env: pytest.MonkeyPatch) -> None:
    loaded = Settings()
    assert loaded.jira_user is not None and loaded.jira_user.get_secret_value() == JIRA_USER
    assert leaks(repr(loaded), str(loaded), f"{loaded!r}", loaded.model_dump_json(), str(loaded.model_dump())) == []


# --- what rollbot hands on ----------------------------------------------------------------------

def test_compose_runs_without_rollbots_secrets(tmp_path: Path, secret_env: pytest.MonkeyPatch) -> None:
    """`docker compose` gets none of rollbot's secrets: it needs none, and the environment it
    runs in would override the Engine's own `.env` (SLACK_BOT_TOKEN, DATABASE_URL, ...)."""
    secret_env.setenv("ENGINE_SETTING", "kept")
    fake_docker = tmp_path / "docker"
    fake_docker.write_text("#!/bin/sh\nenv\n")
    fake_docker.chmod(fake_docker.stat().st_mode | stat.S_IEXEC)
    compose = ComposeCli(tmp_path / "docker-compose.yml", lambda project, service: None, docker_binary=str(fake_docker))
    seen = compose.pull("engine")
    assert "ENGINE_SETTING=kept" in seen
    assert leaks(seen) == []
    assert not [line for line in seen.splitlines() if line.split("=")[0] in
                ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "JIRA_USER", "JIRA_TOKEN", "DATABASE_URL")]


def test_the_inspect_evidence_withholds_the_engines_secrets() -> None:
    attrs = {"Id": "c0ffee", "Config": {"Image": "engine:2.4.0", "Env": [
        "PATH=/usr/local/bin:/usr/bin", "ENGINE_VERSION=2.4.0", "ENGINE_DB_PASSWORD=hunter2-SCANME",
        "OPENAI_API_KEY=sk-SCANME", "ENGINE_SLACK_TOKEN=xoxb-SCANME", "STRIPE_SECRET=SCANME-stripe",
        "BRAIN_URL=postgres://engine:SCANME-pw@db:5432/brain", "KEYBOARD_LAYOUT=us", "EMPTY"]}}
    shown_env = redacted_inspect(attrs)["Config"]["Env"]
    assert "SCANME" not in str(shown_env)
    assert shown_env[:3] == ["PATH=/usr/local/bin:/usr/bin", "ENGINE_VERSION=2.4.0", "ENGINE_DB_PASSWORD=[redacted]"]
    assert "BRAIN_URL=postgres://engine:[redacted]@db:5432/brain" in shown_env
    assert "KEYBOARD_LAYOUT=us" in shown_env and "EMPTY" in shown_env
    assert attrs["Config"]["Env"][2] == "ENGINE_DB_PASSWORD=hunter2-SCANME", "the original is not changed"
