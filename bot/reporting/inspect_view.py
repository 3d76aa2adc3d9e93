"""`docker inspect` of the replaced container, reduced to what a postmortem needs.

An allow-list, not a deny-list: a container's inspect carries secrets in places no list of
names foresees (the environment, the command line, a healthcheck's headers, a log driver's
token, a proxy's basic-auth label). So only the fields a person reading the postmortem uses are
kept (image, created, state, restart count, health log, mounts, ports, labels, log driver),
every environment value is withheld (the names stay: which variables were set is evidence),
and every free text that is kept passes the shape redactor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.redaction import REDACTED, is_secret_name, redact_shapes

Redact = Callable[[str], str]
_STATE_FIELDS = (
    "Status",
    "Running",
    "Paused",
    "Restarting",
    "OOMKilled",
    "Dead",
    "ExitCode",
    "Error",
    "StartedAt",
    "FinishedAt",
)
_MOUNT_FIELDS = ("Type", "Name", "Source", "Destination", "Mode", "RW")


def postmortem_inspect(attrs: dict[str, Any], redact: Redact = redact_shapes) -> dict[str, Any]:
    config = _mapping(attrs.get("Config"))
    host = _mapping(attrs.get("HostConfig"))
    state = _mapping(attrs.get("State"))
    health = _mapping(state.get("Health"))
    log_config = _mapping(host.get("LogConfig"))
    return {
        "Id": attrs.get("Id"),
        "Name": attrs.get("Name"),
        "Created": attrs.get("Created"),
        "Image": attrs.get("Image"),
        "ConfigImage": config.get("Image"),
        "RestartCount": attrs.get("RestartCount"),
        "State": {
            **{name: _scrubbed(state.get(name), redact) for name in _STATE_FIELDS if name in state},
            "Health": {
                "Status": health.get("Status"),
                "FailingStreak": health.get("FailingStreak"),
                "Log": [
                    {
                        "Start": entry.get("Start"),
                        "End": entry.get("End"),
                        "ExitCode": entry.get("ExitCode"),
                        "Output": redact(str(entry.get("Output", ""))),
                    }
                    for entry in map(_mapping, health.get("Log") or [])
                ],
            }
            if health
            else None,
        },
        "Command": scrubbed_argv([*_strings(config.get("Entrypoint")), *_strings(config.get("Cmd"))], redact),
        "Healthcheck": _healthcheck(_mapping(config.get("Healthcheck")), redact),
        "EnvironmentNames": [str(entry).partition("=")[0] for entry in config.get("Env") or []],
        "Labels": {
            name: REDACTED if is_secret_name(name) else redact(str(value))
            for name, value in sorted(_mapping(config.get("Labels")).items())
        },
        "Mounts": [
            {name: mount.get(name) for name in _MOUNT_FIELDS if name in mount}
            for mount in map(_mapping, attrs.get("Mounts") or [])
        ],
        "Ports": _mapping(_mapping(attrs.get("NetworkSettings")).get("Ports")),
        "RestartPolicy": _mapping(host.get("RestartPolicy")),
        "LogDriver": {
            "Type": log_config.get("Type"),
            "Config": {
                name: REDACTED if is_secret_name(name) else redact(str(value))
                for name, value in sorted(_mapping(log_config.get("Config")).items())
            },
        },
    }


def scrubbed_argv(argv: list[str], redact: Redact = redact_shapes) -> list[str]:
    """A command line with its secrets withheld: `--db-password=x` and `--token x` (a flag whose
    name says secret takes the next word as its value), `-u user:pw` and `--user` (curl's
    credentials), and any secret shape inside a word (a bearer header, a URL password)."""
    out: list[str] = []
    withhold_next = False
    for word in argv:
        if withhold_next:
            out.append(REDACTED)
            withhold_next = False
            continue
        flag, equals, _ = word.partition("=")
        if flag.startswith("-") and (is_secret_name(flag) or flag in ("-u", "--user")):
            if equals:
                out.append(f"{flag}={REDACTED}")
            else:
                out.append(word)
                withhold_next = True
            continue
        out.append(redact(word))
    return out


def _healthcheck(check: dict[str, Any], redact: Redact) -> dict[str, Any] | None:
    if not check:
        return None
    test = _strings(check.get("Test"))
    if len(test) == 2 and test[0] == "CMD-SHELL":
        test = [test[0], " ".join(scrubbed_argv(redact(test[1]).split(" "), redact))]
    else:
        test = scrubbed_argv(test, redact)
    return {
        "Test": test,
        **{name: check.get(name) for name in ("Interval", "Timeout", "Retries", "StartPeriod") if name in check},
    }


def _scrubbed(value: Any, redact: Redact) -> Any:
    return redact(value) if isinstance(value, str) else value


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(each) for each in value] if isinstance(value, list) else []
