"""Configuration: a wrong file is one ConfigError naming file, key and expectation; secrets stay hidden."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.brain.snapshots import Snapshot
from bot.brain.swap import forensic_dir, prepare_swap, stage, swap
from bot.config import Settings, config_path, load_config, load_settings
from bot.errors import ConfigError

from .fakes import brain_contents, make_brain

GOOD = """\
# rollbot for the demo Engine
targets:
  engine:
    environment: demo
    compose_file: compose/docker-compose.yml   # relative to this file
    service: engine
    health_url: http://127.0.0.1:8080/health
    approvers: [U0APPROVER]
"""

TOKEN = "xoxb-1234-RECOGNISABLE-secret-5678"


def write(folder: Path, text: str, name: str = "rollbot.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def target_yaml(extra: str = "", drop: str | None = None) -> str:
    lines = [
        "targets:",
        "  engine:",
        "    compose_file: docker-compose.yml",
        "    service: engine",
        "    health_url: http://127.0.0.1:8080/health",
    ]
    kept = [line for line in lines if drop is None or not line.strip().startswith(f"{drop}:")]
    return "\n".join(kept) + "\n" + extra


# --- a good file -------------------------------------------------------------------------------


def test_good_file_loads_with_defaults(tmp_path: Path) -> None:
    """What a person leaves out takes the runbook's defaults."""
    config = load_config(write(tmp_path, GOOD))
    engine = config.targets["engine"]
    assert engine.name == "engine"
    assert engine.environment == "demo"
    assert engine.service == "engine"
    assert engine.drain_timeout == 30
    assert engine.health_timeout == 60
    assert engine.keep_images == 5
    assert engine.brain is None
    assert engine.approvers == ("U0APPROVER",)
    assert config.tickets.kind == "file"
    assert config.target("engine") is engine
    assert config.target("nope") is None


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rollbot may be started from anywhere; the file's own folder gives relative paths meaning."""
    folder = tmp_path / "etc"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(
        write(folder, GOOD + "    brain:\n      path: data/brain.sqlite\n      snapshots_dir: /abs/snaps\n")
    )
    engine = config.targets["engine"]
    assert engine.compose_file == (folder / "compose" / "docker-compose.yml").resolve()
    assert engine.brain is not None
    assert engine.brain.path == (folder / "data" / "brain.sqlite").resolve()
    assert engine.brain.snapshots_dir == Path("/abs/snaps")
    assert config.tickets.directory == (folder / "postmortems").resolve()
    assert config.evidence_dir == (folder / "evidence").resolve()


def test_absolute_compose_file_is_kept(tmp_path: Path) -> None:
    """An absolute path means exactly that path."""
    config = load_config(write(tmp_path, GOOD.replace("compose/docker-compose.yml", "/srv/engine/docker-compose.yml")))
    assert config.targets["engine"].compose_file == Path("/srv/engine/docker-compose.yml")


def test_config_is_frozen(tmp_path: Path) -> None:
    """Configuration is read once; nothing may change it behind the core's back."""
    engine = load_config(write(tmp_path, GOOD)).targets["engine"]
    with pytest.raises(ValidationError):
        engine.drain_timeout = 1  # type: ignore[misc]
    assert engine.drain_timeout == 30


# --- every mistake is a ConfigError naming file, key and expectation --------------------------


def test_missing_file(tmp_path: Path) -> None:
    """The person learns which file was looked for and how to point at another."""
    path = tmp_path / "nowhere.yaml"
    message = config_error(path)
    assert str(path) in message
    assert "not found" in message
    assert "--config" in message and "ROLLBOT_CONFIG" in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    """A YAML mistake points at its line so it can be found in a long file."""
    path = write(tmp_path, "targets:\n  engine:\n    service: a: b\n")
    message = config_error(path)
    assert message.startswith(f"{path}: ")
    assert "not valid YAML" in message
    assert "line 3" in message


def test_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    """A typo is not silently ignored: `drain_timout` would leave the drain at its default."""
    path = write(tmp_path, target_yaml("    drain_timout: 5\n"))
    message = config_error(path)
    assert message.startswith(f"{path}: targets.engine.drain_timout: ")
    assert "unknown key" in message


def test_wrong_type_names_key_expectation_and_value(tmp_path: Path) -> None:
    """The message says where, what was expected and what was found."""
    path = write(tmp_path, target_yaml("    drain_timeout: soon\n"))
    message = config_error(path)
    assert f"{path}: targets.engine.drain_timeout:" in message
    assert "expected" in message and "integer" in message
    assert "'soon'" in message


def test_out_of_range_number_is_refused(tmp_path: Path) -> None:
    """A negative drain timeout cannot reach `docker compose stop --timeout`."""
    path = write(tmp_path, target_yaml("    drain_timeout: -1\n"))
    message = config_error(path)
    assert "targets.engine.drain_timeout" in message and "expected" in message


def test_missing_required_key(tmp_path: Path) -> None:
    """Without `service` there is nothing to roll back; say which key is missing."""
    path = write(tmp_path, target_yaml(drop="service"))
    message = config_error(path)
    assert message.startswith(f"{path}: targets.engine.service: ")
    assert "required key is missing" in message


def test_health_url_must_be_http(tmp_path: Path) -> None:
    """The health check speaks HTTP; anything else is refused with the expectation spelled out."""
    path = write(tmp_path, target_yaml().replace("http://127.0.0.1:8080/health", "ftp://127.0.0.1/health"))
    message = config_error(path)
    assert f"{path}: targets.engine.health_url:" in message
    assert "http:// or https://" in message
    assert "'ftp://127.0.0.1/health'" in message


@pytest.mark.parametrize("text", ["targets: {}\n", "targets:\n", "tickets:\n  kind: file\n", "targets: [engine]\n"])
def test_targets_must_be_a_non_empty_mapping(tmp_path: Path, text: str) -> None:
    """A config without targets could never do anything: refuse it at start."""
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: targets: ")
    assert "expected a mapping" in message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    """An empty or list-shaped file is named and explained, not a crash."""
    path = write(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: ")
    assert "targets" in message


def test_a_target_that_is_not_a_mapping(tmp_path: Path) -> None:
    """`engine: yes` names the target whose body is wrong."""
    path = write(tmp_path, "targets:\n  engine: yes\n")
    assert config_error(path).startswith(f"{path}: targets.engine: expected a mapping")


def test_unknown_tickets_kind(tmp_path: Path) -> None:
    """Only file and jira tickets exist."""
    path = write(tmp_path, target_yaml("tickets:\n  kind: email\n"))
    message = config_error(path)
    assert f"{path}: tickets.kind:" in message and "'email'" in message


def test_several_problems_are_one_line_each(tmp_path: Path) -> None:
    """Fix them all in one go: every problem is reported, each on its own line with the file."""
    path = write(tmp_path, target_yaml("    drain_timeout: soon\n    colour: red\n", drop="service"))
    lines = config_error(path).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{path}: targets.engine.") for line in lines)


# --- settings from the environment --------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "JIRA_URL",
        "JIRA_USER",
        "JIRA_TOKEN",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_settings_come_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    """Tokens and endpoints are environment-only, and the secrets are SecretStr."""
    clean_env.setenv("SLACK_BOT_TOKEN", TOKEN)
    clean_env.setenv("SLACK_SIGNING_SECRET", "signing-RECOGNISABLE")
    clean_env.setenv("JIRA_TOKEN", "jira-RECOGNISABLE")
    clean_env.setenv("DATABASE_URL", "postgresql://rollbot:pw-RECOGNISABLE@db/rollbot")
    clean_env.setenv("SLACK_API_URL", "http://127.0.0.1:9999/api/")
    settings = load_settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == TOKEN
    assert settings.database_url.get_secret_value() == "postgresql://rollbot:pw-RECOGNISABLE@db/rollbot"
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"


def test_settings_never_show_a_secret(clean_env: pytest.MonkeyPatch) -> None:
    """repr, str and a JSON dump of the settings are safe to log."""
    clean_env.setenv("SLACK_BOT_TOKEN", TOKEN)
    clean_env.setenv("SLACK_APP_TOKEN", TOKEN + "-app")
    clean_env.setenv("JIRA_TOKEN", TOKEN + "-jira")
    clean_env.setenv("DATABASE_URL", f"postgresql://u:{TOKEN}@db/rollbot")
    settings = Settings()
    for shown in (repr(settings), str(settings), settings.model_dump_json(), f"{settings}"):
        assert "RECOGNISABLE" not in shown
    assert "**********" in repr(settings)


def test_settings_defaults(clean_env: pytest.MonkeyPatch) -> None:
    """With nothing set, the journal is a local SQLite file and Slack is Slack."""
    settings = load_settings()
    assert settings.slack_bot_token is None
    assert settings.database_url.get_secret_value() == "sqlite:///rollbot.db"
    assert settings.slack_api_url == "https://slack.com/api/"


# --- which file is read ---------------------------------------------------------------------------


def test_config_path_explicit_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--config` beats ROLLBOT_CONFIG."""
    monkeypatch.setenv("ROLLBOT_CONFIG", "/from/env.yaml")
    assert config_path("/explicit.yaml") == Path("/explicit.yaml")
    assert config_path(Path("/explicit.yaml")) == Path("/explicit.yaml")


def test_config_path_environment_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a flag, ROLLBOT_CONFIG names the file."""
    monkeypatch.setenv("ROLLBOT_CONFIG", "/from/env.yaml")
    assert config_path(None) == Path("/from/env.yaml")


def test_config_path_default_last(monkeypatch: pytest.MonkeyPatch) -> None:
    """With neither, ./rollbot.yaml."""
    monkeypatch.delenv("ROLLBOT_CONFIG", raising=False)
    assert config_path(None) == Path("rollbot.yaml")
    monkeypatch.setenv("ROLLBOT_CONFIG", "")
    assert config_path(None) == Path("rollbot.yaml")


# --- compose_files and the log cap --------------------------------------------------------------


def test_compose_files_resolve_in_order_and_name_the_compose_file(tmp_path: Path) -> None:
    """A target may list Compose's files itself (merge order kept); the first is its compose file."""
    text = target_yaml("    compose_files: [deploy/base.yml, deploy/prod.yml]\n", drop="compose_file")
    engine = load_config(write(tmp_path, text)).targets["engine"]
    assert engine.compose_files == (tmp_path / "deploy/base.yml", tmp_path / "deploy/prod.yml")
    assert engine.compose_file == tmp_path / "deploy/base.yml"


def test_compose_file_alone_keeps_working_and_lists_nothing(tmp_path: Path) -> None:
    engine = load_config(write(tmp_path, target_yaml())).targets["engine"]
    assert engine.compose_file == tmp_path / "docker-compose.yml"
    assert engine.compose_files == ()


def test_log_cap_defaults_to_20_mb_and_is_per_target(tmp_path: Path) -> None:
    engine = load_config(write(tmp_path, target_yaml())).targets["engine"]
    assert engine.log_cap_bytes == 20 * 1024 * 1024
    capped = load_config(write(tmp_path, target_yaml("    log_cap_mb: 0.5\n"))).targets["engine"]
    assert capped.log_cap_bytes == 512 * 1024
    assert "log_cap_mb" in config_error(write(tmp_path, target_yaml("    log_cap_mb: 0\n")))


# --- a symlinked brain path ------------------------------------------------------------------------


def brain_yaml(path: Path) -> str:
    return GOOD + f"    brain:\n      path: {path}\n      snapshots_dir: {path.parent / 'snapshots'}\n"


def test_a_symlinked_brain_path_is_restored_in_the_file_the_engine_mounts(tmp_path: Path) -> None:
    """BUG (issue 12, 7): with brain.path a link to the mounted file, the swap renamed the snapshot over
    the link: the link became a plain file, the file the Engine mounts kept the bad brain, and the plan
    said restored. The link is now followed when the config is loaded, so the swap replaces the file."""
    mounted = make_brain(tmp_path / "volume" / "brain.sqlite", schema=2)
    link = tmp_path / "srv" / "brain.sqlite"
    link.parent.mkdir()
    link.symlink_to(mounted)
    snapshot_file = make_brain(tmp_path / "snapshots" / "before.sqlite", schema=1)

    brain = load_config(write(tmp_path, brain_yaml(link))).targets["engine"].brain
    assert brain is not None and brain.path == mounted.resolve()
    snapshot = Snapshot(snapshot_file, datetime.now(UTC), 1, snapshot_file.stat().st_size, None)
    staged = stage(snapshot, brain.path, "run1")
    swap(brain.path, staged, prepare_swap(brain.path, staged, forensic_dir(brain.path, "run1")))

    assert link.is_symlink() and link.resolve() == mounted.resolve()
    assert brain_contents(mounted)["#user_version"] == 1, "the mounted file holds the restored brain"


def test_a_brain_in_a_symlinked_folder_resolves_to_the_real_folder(tmp_path: Path) -> None:
    """The staged and forensic copies go beside the real file, on its filesystem."""
    real = make_brain(tmp_path / "disk" / "data" / "brain.sqlite")
    (tmp_path / "data").symlink_to(tmp_path / "disk" / "data")
    brain = load_config(write(tmp_path, brain_yaml(tmp_path / "data" / "brain.sqlite"))).targets["engine"].brain
    assert brain is not None and brain.path == real.resolve()


def test_a_broken_brain_link_is_refused_with_the_reason(tmp_path: Path) -> None:
    link = tmp_path / "brain.sqlite"
    link.symlink_to(tmp_path / "gone" / "brain.sqlite")
    message = config_error(write(tmp_path, brain_yaml(link)))
    assert "targets.engine.brain.path" in message and "symbolic link to" in message and "does not exist" in message


def test_a_brain_path_that_does_not_exist_is_kept_for_preflight_to_explain(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "brain.sqlite"
    brain = load_config(write(tmp_path, brain_yaml(missing))).targets["engine"].brain
    assert brain is not None and brain.path == missing
