"""The one exception tree of rollbot.

    RollbotError                 a failure a person can act on; its message says what and what next
    ├── ConfigError              the configuration file or environment is wrong
    ├── InvalidRequest           the request itself is malformed (unknown target, bad version)
    ├── OutsideSystemError       Docker, Compose, the registry or the health endpoint misbehaved
    │   ├── ComposeError         a `docker compose` process failed
    │   └── DockerError          the Docker daemon refused or could not be reached
    └── ComposeFileError         the compose file cannot be read or edited safely

Front ends catch `RollbotError` and show its message; anything else is a bug and gets an error id.
Messages never carry secrets: callers build them from names and versions, not from settings.
"""


class RollbotError(Exception):
    """Base of every failure rollbot knows how to explain."""


class ConfigError(RollbotError):
    """The configuration is missing or wrong; the message names the file, the key and the fix."""


class InvalidRequest(RollbotError):
    """A request that no plan can be made for."""


class OutsideSystemError(RollbotError):
    """An outside system (Docker, Compose, a registry, HTTP) failed."""


class ComposeError(OutsideSystemError):
    """A `docker compose` process exited non-zero or timed out."""


class DockerError(OutsideSystemError):
    """The Docker daemon could not answer a question about containers or images."""


class ComposeFileError(RollbotError):
    """The compose file is unreadable, does not name the service, or cannot be edited in place."""
