"""Configuration: the YAML of the design card plus the environment, read once into frozen objects.

Everything a person tunes lives in the YAML (`--config`, else `ROLLBOT_CONFIG`, else
`./rollbot.yaml`). Secrets and endpoints live only in the environment and are `SecretStr`, so
printing a settings object never shows a token. A wrong file is a `ConfigError` that names the
file, the key and what was expected; nothing here raises anything else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.brain_config import BrainConfig, ExternalCallsConfig, Frozen
from bot.errors import ConfigError

__all__ = [
    "BrainConfig",
    "Config",
    "ConfigError",
    "ExternalCallsConfig",
    "Settings",
    "TargetConfig",
    "load_config",
    "load_settings",
]

DEFAULT_CONFIG_PATH = Path("rollbot.yaml")
CONFIG_ENV_VAR = "ROLLBOT_CONFIG"


_Frozen = Frozen


class MetricsConfig(_Frozen):
    """Where the Engine's metrics are and what counts as sharply worse: the runbook's "error rate
    or latency sharply worse than baseline and not improving", made into numbers.

    The queries are PromQL, evaluated as they are; in `error_count_query`, `$window` is replaced
    with the running version's age (e.g. `95s`), so it can count the failed requests since it
    started. Seconds are whole seconds."""

    prometheus_url: str
    error_rate_query: str | None = None  # failed requests / all requests, a fraction
    latency_query: str | None = None  # p95 latency in seconds
    error_count_query: str | None = None  # failed requests over `$window`: tells one bad request from many
    ratio: float = Field(2.0, gt=1)  # "sharply worse": now >= ratio × baseline
    min_error_rate: float = Field(0.01, ge=0, le=1)  # below this share of requests, errors are never sharp
    isolated_errors: int = Field(3, ge=0)  # this many failed requests or fewer: a bad request, not the service
    baseline_seconds: int = Field(900, ge=5)  # the window before the running version started
    trend_seconds: int = Field(300, ge=5)  # "not improving" is judged over this last stretch
    # A check or plan waits at most this long for all of its queries together (then says what it could
    # not measure); each query of the soak and of the bad window's capture at most this long.
    timeout_seconds: float = Field(5, gt=0, le=60)

    @field_validator("prometheus_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL")
        return value


class TargetConfig(_Frozen):
    """One Compose service rollbot may roll back, with the knobs of the runbook."""

    name: str = ""
    environment: str = "production"
    compose_file: Path
    # The files Compose reads, in merge order (`docker compose -f A -f B`). Empty: Compose finds
    # them itself from compose_file's folder, as an operator's plain `docker compose` there does.
    compose_files: tuple[Path, ...] = ()
    service: str
    health_url: str
    drain_timeout: int = Field(30, ge=0, le=3600)
    health_timeout: int = Field(60, ge=1, le=3600)
    brain: BrainConfig | None = None
    incident_channel: str | None = None
    requesters: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    keep_images: int = Field(5, ge=1, le=100)
    # The bad version's captured logs are cut in the middle beyond this size: first and last lines kept.
    log_cap_mb: float = Field(20, gt=0, le=10_000)
    # Drills break the service on purpose: never in production unless this says so.
    allow_drills: bool | None = None
    # A staging target whose drills tell how long a rollback of this one takes.
    rehearses: str | None = None
    # The Engine's error rate and latency in Prometheus: what `check` and the all-clear judge by.
    metrics: MetricsConfig | None = None
    # The runbook's regression eval: a command (an argument list, never a shell) or a URL;
    # exit status non-zero or an answer other than 2xx counts as failing.
    regression_eval: tuple[str, ...] | str | None = None
    # The all-clear waits this long with health ok and errors within the baseline's tolerance.
    # Default: 60 s in production, 10 s elsewhere when metrics are configured; 0 without them.
    soak_seconds: int | None = Field(None, ge=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _compose_file_from_list(cls, data: Any) -> Any:
        """`compose_files` alone is enough: its first file is the compose file (the project's folder)."""
        if isinstance(data, dict) and not data.get("compose_file") and data.get("compose_files"):
            return {**data, "compose_file": next(iter(data["compose_files"]))}
        return data

    @property
    def log_cap_bytes(self) -> int:
        return int(self.log_cap_mb * 1024 * 1024)

    @property
    def drills_allowed(self) -> bool:
        return self.allow_drills if self.allow_drills is not None else self.environment != "production"

    @property
    def soak(self) -> int:
        """Seconds the all-clear waits for health and errors to stay recovered."""
        if self.soak_seconds is not None:
            return self.soak_seconds
        if self.metrics is None:
            return 0
        return 60 if self.environment == "production" else 10

    @field_validator("health_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL")
        return value

    @field_validator("regression_eval")
    @classmethod
    def _eval_form(cls, value: tuple[str, ...] | str | None) -> tuple[str, ...] | str | None:
        if isinstance(value, str) and not value.startswith(("http://", "https://")):
            raise ValueError("a command as a list of arguments (no shell), or an http:// or https:// URL")
        if isinstance(value, tuple) and not value:
            raise ValueError("a command with at least one argument")
        return value


class JiraConfig(_Frozen):
    """How rollbot talks to Jira: Cloud and Data Center differ in search and in credentials."""

    # auto: ask serverInfo's deploymentType once, at first use
    deployment: Literal["auto", "cloud", "datacenter"] = "auto"
    # How long a new issue may take to show in search (Cloud's index lags by seconds): a search
    # that looks for a create whose answer was lost waits at least this long after the create.
    search_delay_seconds: float = Field(15, ge=0, le=600)


class TicketsConfig(_Frozen):
    """Where postmortem tickets go: markdown files by default, Jira when configured."""

    kind: Literal["file", "jira"] = "file"
    directory: Path = Path("postmortems")
    project: str | None = None
    issue_type: str = "Task"
    labels: tuple[str, ...] = ()
    fields: dict[str, Any] = Field(default_factory=dict)  # extra Jira fields, e.g. {"priority": {"name": "High"}}
    # A ticket's copy of an evidence file larger than this is cut (first and last parts kept) and gzipped.
    attachment_cap_mb: float = Field(5, gt=0, le=1024)
    jira: JiraConfig = JiraConfig()

    @property
    def attachment_cap_bytes(self) -> int:
        return int(self.attachment_cap_mb * 1024 * 1024)

    @model_validator(mode="after")
    def _jira_needs_a_project(self) -> TicketsConfig:
        if self.kind == "jira" and not self.project:
            raise ValueError("tickets.kind jira needs tickets.project (the Jira project key)")
        return self


class Config(_Frozen):
    """The whole YAML file. Paths inside it are resolved against the file's own folder."""

    targets: dict[str, TargetConfig]
    tickets: TicketsConfig = TicketsConfig()
    evidence_dir: Path = Path("evidence")
    plan_ttl_minutes: float = Field(15, gt=0, le=24 * 60)
    # A plan waiting for an approver calls them again in its thread after this long.
    approval_reminder_minutes: float = Field(5, gt=0, le=24 * 60)
    # On SIGTERM, how long a step in flight may take to reach its end before rollbot exits
    # anyway (the run is then resumed by the next start). Give the container manager more.
    shutdown_timeout_seconds: float = Field(90, gt=0, le=3600)
    source: Path = Path("rollbot.yaml")

    def target(self, name: str) -> TargetConfig | None:
        return self.targets.get(name)


class Settings(BaseSettings):
    """Secrets and endpoints from the environment. Never logged: tokens are `SecretStr`, and
    so is the Jira user (with the token it makes the Basic credentials; it may be an email)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    jira_url: str | None = None
    jira_user: SecretStr | None = None
    jira_token: SecretStr | None = None
    database_url: SecretStr = SecretStr("sqlite:///rollbot.db")

    def secret_values(self) -> list[str]:
        """Every secret's value, for redaction; a password inside DATABASE_URL on its own too."""
        values = [field.get_secret_value() for field in (getattr(self, name) for name in _SECRET_FIELDS) if field]
        try:
            password = make_url(self.database_url.get_secret_value()).password
        except ArgumentError:
            password = None
        return values + ([str(password)] if password else [])


_SECRET_FIELDS = tuple(
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in get_args(field.annotation) or field.annotation is SecretStr
)
SECRET_VARIABLES = tuple(name.upper() for name in _SECRET_FIELDS)


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for a process rollbot starts: everything but rollbot's own secrets.

    `docker compose` needs none of them, and Compose lets the environment it runs in override
    a project's `.env`: an Engine whose compose file reads `${SLACK_BOT_TOKEN}` from its own
    `.env` would otherwise be started by a rollback with rollbot's token instead of its own."""
    return {name: value for name, value in environ.items() if name.upper() not in SECRET_VARIABLES}


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """The file to read: the `--config` flag, else `ROLLBOT_CONFIG`, else `./rollbot.yaml`."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV_VAR)
    return Path(from_env) if from_env else DEFAULT_CONFIG_PATH


def load_config(path: Path) -> Config:
    """Read and validate the YAML at `path`; every failure is a `ConfigError` naming the file."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'targets' key at the top level")
    raw = _with_target_names(path, raw)
    try:
        config = Config.model_validate({**raw, "source": path})
    except ValidationError as error:
        raise ConfigError(_describe(path, error)) from None
    return _resolve_paths(config, path.parent)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigError(_describe(Path("environment"), error)) from None


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found (pass --config or set {CONFIG_ENV_VAR})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration file: {error.strerror}") from None
    try:
        return YAML(typ="safe").load(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None


def _with_target_names(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    targets = raw.get("targets")
    if not isinstance(targets, dict) or not targets:
        raise ConfigError(f"{path}: targets: expected a mapping of target names to settings")
    named = {}
    for name, body in targets.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: targets.{name}: expected a mapping of settings")
        named[str(name)] = {**body, "name": str(name)}
    return {**raw, "targets": named}


def _describe(path: Path, error: ValidationError) -> str:
    """One line per problem: `file: targets.engine.drain_timeout: expected ..., got 'x'`."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown key (check its spelling against the README)"
        elif problem["type"] == "missing":
            message = "required key is missing"
        else:
            message = message.replace("Value error, ", "expected ").replace("Input should be", "expected")
            if not isinstance(problem["input"], (dict, list)):
                message += f", got {str(problem['input'])[:60]!r}"
        lines.append(f"{path}: {key}: {message}")
    return "\n".join(lines)


def _resolve_paths(config: Config, base: Path) -> Config:
    """Relative paths in the file mean "relative to this file", wherever rollbot was started."""

    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    targets = {}
    for name, target in config.targets.items():
        brain = target.brain
        if brain is not None:
            brain = brain.model_copy(
                update={
                    "path": _real_brain_path(config.source, name, resolve(brain.path)),
                    "snapshots_dir": resolve(brain.snapshots_dir),
                }
            )
        targets[name] = target.model_copy(
            update={
                "compose_file": resolve(target.compose_file),
                "brain": brain,
                "compose_files": tuple(resolve(path) for path in target.compose_files),
            }
        )
    tickets = config.tickets.model_copy(update={"directory": resolve(config.tickets.directory)})
    return config.model_copy(
        update={"targets": targets, "tickets": tickets, "evidence_dir": resolve(config.evidence_dir)}
    )


def _real_brain_path(source: Path, target: str, path: Path) -> Path:
    """The file itself when the brain's path (or a folder on it) is a symbolic link.

    A restore renames the snapshot over the brain's path: over a link, the rename would replace
    the link and leave the file the Engine mounts holding the bad brain, while the plan says
    restored. The staged copy, the forensic copy and the rename must happen beside the real
    file (hard links and atomic renames only work within its filesystem), so the link is
    followed once, here. A broken or looping link is refused with the reason. A path that does
    not exist at all is kept: preflight says there is no brain."""
    if not path.is_symlink() and not path.exists():
        return path
    try:
        return path.resolve(strict=True)
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: targets.{target}.brain.path: {path} is a symbolic link to "
            f"{os.readlink(path) if path.is_symlink() else '?'}, which does not exist"
        ) from None
    except (OSError, RuntimeError) as error:
        raise ConfigError(f"{source}: targets.{target}.brain.path: {path} cannot be followed: {error}") from None
