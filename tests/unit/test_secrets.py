"""Tokens and passwords never appear in logs, exceptions, reprs or what rollbot hands to the
processes and tickets it makes. Each secret here is a recognisable value that a leak would show."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.adapters.compose import ComposeCli
from bot.config import Config, Settings, TicketsConfig
from bot.logs import JsonFormatter
from bot.ports import Postmortem
from bot.redaction import REDACTED, Redactor, install
from bot.reporting.evidence import redacted_inspect
from bot.wiring import ticket_sink
from storage import connect
from tests.databases import fresh_postgres_database
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import free_port

BOT_TOKEN = "xoxb-SCANME-bot-7c1d9e"
SIGNING_SECRET = "SCANME-signing-52af0b"
APP_TOKEN = "xapp-SCANME-app-90d1"
JIRA_USER = "scanme-jira-user@example.com"
JIRA_TOKEN = "SCANME-jira-token-e83b"
DB_PASSWORD = "SCANME-db-pw-31c7"
DATABASE_URL = f"postgresql+psycopg://rollbot:{DB_PASSWORD}@127.0.0.1:1/rollbot"
BASIC = base64.b64encode(f"{JIRA_USER}:{JIRA_TOKEN}".encode()).decode()
EVERY_FORM = (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN, JIRA_USER, JIRA_TOKEN, DB_PASSWORD, BASIC, "SCANME")


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": SecretStr(BOT_TOKEN),
        "slack_signing_secret": SecretStr(SIGNING_SECRET),
        "slack_app_token": SecretStr(APP_TOKEN),
        "jira_user": SecretStr(JIRA_USER),
        "jira_token": SecretStr(JIRA_TOKEN),
        "database_url": SecretStr(DATABASE_URL),
    }
    return Settings(**{**values, **overrides})


def leaks(*texts: str) -> list[str]:
    return [form for form in EVERY_FORM for text in texts if form in text]


def shown(error: BaseException) -> tuple[str, str, str]:
    """How an exception can reach a person or a log: its str, its repr, its whole traceback."""
    return str(error), repr(error), "".join(traceback.format_exception(error))


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in (
        ("SLACK_BOT_TOKEN", BOT_TOKEN),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
        ("SLACK_APP_TOKEN", APP_TOKEN),
        ("JIRA_USER", JIRA_USER),
        ("JIRA_TOKEN", JIRA_TOKEN),
        ("DATABASE_URL", DATABASE_URL),
    ):
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_settings_show_no_secret_however_they_are_printed(secret_env: pytest.MonkeyPatch) -> None:
    loaded = Settings()
    assert loaded.jira_user is not None and loaded.jira_user.get_secret_value() == JIRA_USER
    assert leaks(repr(loaded), str(loaded), f"{loaded!r}", loaded.model_dump_json(), str(loaded.model_dump())) == []


# --- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def log_stream() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger("rollbot.test.redaction")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_the_log_redactor_withholds_every_form_of_every_secret(log_stream: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log_stream
    install(settings(), logger)
    logger.warning("Authorization: Bearer %s", BOT_TOKEN)
    logger.warning("connecting to %s", DATABASE_URL)
    logger.warning("headers = {'Authorization': 'Basic %s'}", BASIC)
    logger.warning("a form body: user=%s", quote(JIRA_USER, safe=""))
    try:
        raise RuntimeError(f"signing with {SIGNING_SECRET} as {JIRA_USER}")
    except RuntimeError:
        logger.exception("a bug")
    logger.warning("a stack", stack_info=True)
    written = stream.getvalue()
    assert leaks(written) == []
    assert written.count(REDACTED) >= 6 and "Traceback" in written and "RuntimeError" in written


def test_json_log_lines_carry_the_redacted_trace(log_stream: tuple[logging.Logger, io.StringIO]) -> None:
    """`rollbot serve` logs JSON lines by default: the formatter writes the trace the redactor
    left, not one it formats again from the exception."""
    logger, stream = log_stream
    logger.handlers[0].setFormatter(JsonFormatter())
    install(settings(), logger)
    try:
        raise RuntimeError(f"Jira said no to {JIRA_USER}:{JIRA_TOKEN}")
    except RuntimeError:
        logger.exception("filing failed for %s", BOT_TOKEN)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert leaks(json.dumps(line)) == []
    assert line["message"] == f"filing failed for {REDACTED}" and "RuntimeError: Jira said no to" in line["error"]


def test_installing_the_redactor_twice_keeps_one(log_stream: tuple[logging.Logger, io.StringIO]) -> None:
    """Each handler ends with exactly the newest redactor, whatever other handlers (pytest's log
    capture, say) the logger carries besides the test's own."""
    logger, _ = log_stream
    install(settings(), logger)
    second = install(settings(), logger)
    assert logger.handlers
    for handler in logger.handlers:
        assert [f for f in handler.filters if isinstance(f, Redactor)] == [second]
    assert APP_TOKEN not in repr(second)


# --- the Slack and Jira clients, and the database, when they fail ------------------------------


def test_slack_client_failures_carry_no_token() -> None:
    with FakeSlack(tokens={"xoxb-some-other-token"}) as slack:
        client = WebClient(token=BOT_TOKEN, base_url=slack.url)
        failures = []
        for break_it in (lambda: None, lambda: slack.fail("chat.postMessage", status=500)):
            break_it()
            with pytest.raises(Exception) as failed:
                client.chat_postMessage(channel="C0PLANS001", text="hello")
            failures.append(failed.value)
    with pytest.raises(Exception) as unreachable:
        WebClient(token=BOT_TOKEN, base_url=f"http://127.0.0.1:{free_port()}/").chat_postMessage(
            channel="C0X", text="x"
        )
    failures.append(unreachable.value)
    assert "invalid_auth" in str(failures[0]) and "fatal_error" in str(failures[1])
    assert leaks(*(text for failure in failures for text in shown(failure))) == []


class _Answers(BaseHTTPRequestHandler):
    """Answers every request with the status the test chose, like Jira refusing or failing."""

    status = 500

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"errorMessages": ["no"], "errors": {}}')

    do_POST = do_PUT = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status", [401, 403, 500, None])
def test_jira_client_failures_carry_no_credentials(tmp_path: Path, status: int | None) -> None:
    if status is None:
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens
        server = None
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), type("Answers", (_Answers,), {"status": status}))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
    config = Config(targets={}, tickets=TicketsConfig(kind="jira", project="OPS"))
    sink = ticket_sink(config, settings(jira_url=url))
    postmortem = Postmortem(
        run_id="20260101-000000-abcdef",
        title="t",
        summary=[],
        impact=[],
        loss=[],
        timeline=[],
        detection=[],
        resolution=[],
        action_items=[],
        supporting=[],
    )
    try:
        for attempt in (sink.find, sink.create):
            with pytest.raises(Exception) as failed:
                attempt(postmortem)
            assert leaks(*shown(failed.value)) == [], type(failed.value).__name__
    finally:
        if server is not None:
            server.shutdown()


def test_a_database_url_password_is_in_no_error(tmp_path: Path) -> None:
    with pytest.raises(OperationalError) as failed:
        connect(DATABASE_URL)
    assert leaks(*shown(failed.value)) == []


def _history(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    """`rollbot history` as a process, with every secret of this module in its environment."""
    (tmp_path / "rollbot.yaml").write_text(
        "targets:\n  engine:\n    compose_file: c.yml\n    service: engine\n    health_url: http://127.0.0.1:9/health\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "JIRA_", "ROLLBOT_"))},
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "JIRA_USER": JIRA_USER,
        "JIRA_TOKEN": JIRA_TOKEN,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "history"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_the_cli_shows_no_database_password_when_the_database_is_down(tmp_path: Path) -> None:
    """`rollbot history` against a PostgreSQL that does not answer: the one line that reaches the
    terminal carries no password, nor any other secret of the environment."""
    done = _history(tmp_path, DATABASE_URL)
    assert done.returncode == 1 and done.stderr.startswith("cannot use the journal database (DATABASE_URL): ")
    assert "Connection refused" in done.stderr and "Traceback" not in done.stderr
    assert leaks(done.stdout, done.stderr) == []


def test_the_cli_shows_no_database_password_to_a_real_postgresql(tmp_path: Path) -> None:
    """The test cluster refuses a wrong password, then takes the right one: neither password
    is in anything `rollbot history` prints."""
    with fresh_postgres_database() as database_url:
        real = make_url(database_url)
        refused = _history(tmp_path, real.set(password=DB_PASSWORD).render_as_string(hide_password=False))
        answered = _history(tmp_path, database_url)
    assert refused.returncode == 1 and "password authentication failed" in refused.stderr
    assert refused.stderr.strip().startswith("cannot use the journal database (DATABASE_URL):")
    assert "Traceback" not in refused.stderr, "a database that refuses us is one line, not a bug report"
    assert leaks(refused.stdout, refused.stderr) == []
    assert answered.returncode == 0 and "no runs yet" in answered.stdout, answered.stderr
    assert str(real.password) not in answered.stdout + answered.stderr + refused.stdout + refused.stderr


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
    assert not [
        line
        for line in seen.splitlines()
        if line.split("=")[0]
        in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "JIRA_USER", "JIRA_TOKEN", "DATABASE_URL")
    ]


def test_the_inspect_evidence_withholds_the_engines_secrets() -> None:
    attrs = {
        "Id": "c0ffee",
        "Config": {
            "Image": "engine:2.4.0",
            "Env": [
                "PATH=/usr/local/bin:/usr/bin",
                "ENGINE_VERSION=2.4.0",
                "ENGINE_DB_PASSWORD=hunter2-SCANME",
                "OPENAI_API_KEY=sk-SCANME",
                "ENGINE_SLACK_TOKEN=xoxb-SCANME",
                "STRIPE_SECRET=SCANME-stripe",
                "BRAIN_URL=postgres://engine:SCANME-pw@db:5432/brain",
                "KEYBOARD_LAYOUT=us",
                "EMPTY",
            ],
        },
    }
    shown = redacted_inspect(attrs)
    assert "SCANME" not in json.dumps(shown)
    assert shown["EnvironmentNames"] == [
        "PATH",
        "ENGINE_VERSION",
        "ENGINE_DB_PASSWORD",
        "OPENAI_API_KEY",
        "ENGINE_SLACK_TOKEN",
        "STRIPE_SECRET",
        "BRAIN_URL",
        "KEYBOARD_LAYOUT",
        "EMPTY",
    ]
    assert shown["ConfigImage"] == "engine:2.4.0"
    assert attrs["Config"]["Env"][2] == "ENGINE_DB_PASSWORD=hunter2-SCANME", "the original is not changed"
