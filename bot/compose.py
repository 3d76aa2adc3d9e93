"""Docker Compose v2, run as a process with an argument list — never through a shell.

Only the verbs of the runbook are offered: pull, stop with a drain timeout, up -d, and the
container id of a service. A non-zero exit or a timeout is a `ComposeError` carrying the tail
of what compose printed, which is what a person needs to see in the journal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from bot.compose_file import project_name
from bot.config import without_secrets
from bot.errors import ComposeError

OUTPUT_TAIL_LINES = 12


class Compose(Protocol):
    """What the core needs from Compose for one compose file."""

    def container_id(self, service: str) -> str | None: ...
    def pull(self, service: str) -> str: ...
    def stop(self, service: str, drain_timeout: int) -> str: ...
    def up(self, service: str) -> str: ...


FindContainer = Callable[[str, str], str | None]


class ComposeCli:
    """`docker compose -f FILE …` for one compose file, run from the file's own folder.

    Finding the service's container is a question for the Docker API (by Compose's project and
    service labels), not a `docker compose ps` process: preflight asks it on every plan, and
    starting the compose binary costs more CPU than the whole rest of preflight.
    """

    def __init__(
        self,
        compose_file: Path,
        find_container: FindContainer,
        docker_binary: str | None = None,
        pull_timeout: int = 900,
    ) -> None:
        self._file = compose_file
        self._find_container = find_container
        self._docker = docker_binary or shutil.which("docker") or "docker"
        self._pull_timeout = pull_timeout

    def container_id(self, service: str) -> str | None:
        return self._find_container(project_name(self._file), service)

    def pull(self, service: str) -> str:
        return self._run(["pull", "--quiet", service], timeout=self._pull_timeout)

    def stop(self, service: str, drain_timeout: int) -> str:
        return self._run(["stop", "--timeout", str(drain_timeout), service], timeout=drain_timeout + 60)

    def up(self, service: str) -> str:
        return self._run(["up", "--detach", service], timeout=300)

    def _run(self, arguments: Sequence[str], timeout: float) -> str:
        command = [self._docker, "compose", "--file", str(self._file), *arguments]
        shown = "docker compose " + " ".join(arguments)
        try:
            completed = subprocess.run(
                command,
                cwd=self._file.parent,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                env=without_secrets(os.environ),
            )
        except FileNotFoundError:
            raise ComposeError(f"{shown}: the docker CLI was not found on PATH") from None
        except subprocess.TimeoutExpired:
            raise ComposeError(f"{shown}: no answer within {timeout:.0f}s") from None
        if completed.returncode != 0:
            raise ComposeError(f"{shown} exited {completed.returncode}: {_tail(completed.stderr or completed.stdout)}")
        return (completed.stdout + completed.stderr).strip()


def _tail(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return " | ".join(lines[-OUTPUT_TAIL_LINES:]) or "(no output)"
