"""Docker Compose v2, run as a process with an argument list — never through a shell.

Compose runs exactly as the operator runs it: from the project's folder with Compose's own
discovery (`docker-compose.override.yml`, `COMPOSE_FILE` and `COMPOSE_PROJECT_NAME` in `.env`, a
top-level `name:`), or with the files the target lists in `compose_files`. rollbot never works
out the project name or the merged service itself: it asks Compose (`config --format json`,
`config --hash`) and finds the service's containers by the labels Compose put on them.

Only the verbs of the runbook are offered: pull, stop with a drain timeout, up -d. A non-zero
exit or a timeout is a `ComposeError` carrying the tail of what compose printed, which is what a
person needs to see in the journal.

`docker compose` is the docker CLI running its Compose plugin as a child process: killing the
CLI alone leaves the plugin acting (an `up` that finishes after rollbot has moved on). So each
run gets its own process group (a new session) and a timeout kills the whole group; then the
service's containers are read again, so the error says what state the timeout left them in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.config import without_secrets
from bot.errors import ComposeError
from bot.ports import ServiceConfig

OUTPUT_TAIL_LINES = 12
# The names `docker compose` looks for in its folder when it is given no --file.
DEFAULT_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


FindContainers = Callable[[str, str], list[str]]

# Compose's answers, per (folder, --file arguments, service): see `ComposeCli._cached`.
_ANSWERS: dict[tuple[Path, tuple[Path, ...], str], tuple[tuple[Any, ...], tuple[Any, ...], ServiceConfig]] = {}
_ANSWERS_LOCK = threading.Lock()


class ComposeCli:
    """`docker compose` for one target, run from the project's folder.

    With `compose_files` the files are passed as `--file`s in that order. Without, a compose
    file with one of Compose's default names is left to Compose's discovery (which adds the
    override file and honours `COMPOSE_FILE`); any other name is passed as the only `--file`,
    since plain `docker compose` in that folder would not read it.

    Preflight asks for the service's config on every plan and starting the compose binary costs
    more CPU than the rest of preflight, so Compose's answers are kept until a file they depend
    on changes (inode, size, mtime of the folder's YAML files, `.env`, the files merged) or the
    environment does. Containers are found through the Docker API by Compose's labels.
    """

    def __init__(
        self,
        compose_file: Path,
        find_containers: FindContainers,
        compose_files: Sequence[Path] = (),
        docker_binary: str | None = None,
        pull_timeout: int = 900,
        up_timeout: int = 300,
    ) -> None:
        self._file = compose_file
        listed = tuple(compose_files)
        self._directory = (listed[0] if listed else compose_file).parent
        self._file_args = listed or (() if compose_file.name in DEFAULT_NAMES else (compose_file,))
        self._find_containers = find_containers
        self._docker = docker_binary or shutil.which("docker") or "docker"
        self._pull_timeout = pull_timeout
        self._up_timeout = up_timeout

    def service(self, service: str) -> ServiceConfig:
        """Compose's project name, merged image and config hash for `service`, and its files."""
        key = (self._directory, self._file_args, service)
        base = self._base_stamp()
        with _ANSWERS_LOCK:
            cached = _ANSWERS.get(key)
        if cached is not None and cached[0] == base and cached[1] == _stamps(cached[2].files):
            return cached[2]
        answer = self._ask(service)
        with _ANSWERS_LOCK:
            _ANSWERS[key] = (base, _stamps(answer.files), answer)
        return answer

    def container_ids(self, service: str) -> list[str]:
        """The service's containers (never a one-off of it), newest first."""
        return self._find_containers(self.service(service).project, service)

    def container_id(self, service: str) -> str | None:
        found = self.container_ids(service)
        return found[0] if found else None

    def pull(self, service: str) -> str:
        return self._run(["pull", "--quiet", service], timeout=self._pull_timeout)

    def stop(self, service: str, drain_timeout: int) -> str:
        return self._run(["stop", "--timeout", str(drain_timeout), service], timeout=drain_timeout + 60)

    def up(self, service: str) -> str:
        return self._run(["up", "--detach", service], timeout=self._up_timeout)

    def _ask(self, service: str) -> ServiceConfig:
        model = self._model(self._file_args)
        body = (model.get("services") or {}).get(service)
        if not isinstance(body, dict):
            known = ", ".join(sorted(model.get("services") or {})) or "none"
            raise ComposeError(f"{self._file}: Compose finds no service '{service}' there (services: {known})")
        if not body.get("image"):
            raise ComposeError(f"{self._file}: service '{service}' has no image to switch")
        hashed = self._run(["config", "--hash", service], timeout=60).split()
        files = self._file_args or self._discovered_files(model)
        return ServiceConfig(
            str(model["name"]), self._directory, files, str(body["image"]), hashed[-1] if hashed else ""
        )

    def _model(self, file_args: tuple[Path, ...]) -> dict[str, Any]:
        output = self._run(["config", "--format", "json"], timeout=60, file_args=file_args)
        try:
            model = json.loads(output)
        except ValueError:
            raise ComposeError(f"docker compose config in {self._directory} did not print JSON") from None
        if not isinstance(model, dict) or not model.get("name"):
            raise ComposeError(f"docker compose config in {self._directory} printed no project name")
        return model

    def _discovered_files(self, model: dict[str, Any]) -> tuple[Path, ...]:
        """The files Compose's discovery merged, in order: COMPOSE_FILE as Compose's own environment
        has it (process or `.env`), else the compose file and its override. The image line is
        edited in one of them, so the guess is proved: Compose, given exactly these files, must
        answer the same model as its discovery did."""
        environment = self._environment()
        listed = environment.get("COMPOSE_FILE", "")
        if listed:
            separator = environment.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
            files = tuple((self._directory / part).resolve() for part in listed.split(separator) if part)
        else:
            files = (self._file, *_override_of(self._file))
        if self._model(files) != model:
            names = ", ".join(path.name for path in files)
            raise ComposeError(
                f"Compose in {self._directory} reads other files than {names}; "
                "list them in merge order under the target's compose_files"
            )
        return files

    def _environment(self) -> dict[str, str]:
        """The variables Compose interpolates with (process and `.env`); empty from a Compose too
        old for `config --environment`: the files guessed without it are still proved."""
        try:
            output = self._run(["config", "--environment"], 60)
        except ComposeError:
            return {}
        return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def _base_stamp(self) -> tuple[Any, ...]:
        """What Compose's answer depends on besides the merged files themselves."""
        candidates = {*self._file_args, self._file, self._directory / ".env"}
        try:
            candidates.update(p for p in self._directory.iterdir() if p.suffix in (".yml", ".yaml"))
        except OSError:
            pass
        environment = hashlib.sha256(repr(sorted(without_secrets(os.environ).items())).encode()).hexdigest()
        return (_stamps(sorted(candidates)), environment)

    def _run(self, arguments: Sequence[str], timeout: float, file_args: tuple[Path, ...] | None = None) -> str:
        files = self._file_args if file_args is None else file_args
        command = [self._docker, "compose", *(a for f in files for a in ("--file", str(f))), *arguments]
        shown = "docker compose " + " ".join(arguments)
        try:
            returncode, stdout, stderr = _run_in_own_group(command, self._directory, timeout)
        except FileNotFoundError:
            raise ComposeError(f"{shown}: the docker CLI was not found on PATH") from None
        except NotADirectoryError:
            raise ComposeError(f"{shown}: {self._directory} is not a folder") from None
        except subprocess.TimeoutExpired:
            after = self._state_after_timeout(arguments[-1]) if arguments[0] in ACTING_VERBS else ""
            raise ComposeError(
                f"{shown}: no answer within {timeout:.0f}s; it was killed with its process group{after}"
            ) from None
        if returncode != 0:
            raise ComposeError(f"{shown} exited {returncode}: {_tail(stderr or stdout)}")
        if arguments[:1] == ["config"]:
            return stdout.strip()
        return (stdout + stderr).strip()

    def _state_after_timeout(self, service: str) -> str:
        """What the service's containers are doing now, for the journal: a killed `stop` or `up`
        may have done all, part or none of its work."""
        try:
            output = self._run(["ps", "--all", "--format", "json", service], timeout=STATE_TIMEOUT)
        except ComposeError as error:
            return f"; the state of {service} could not be read afterwards: {error}"
        containers = _ps_entries(output)
        if not containers:
            return f"; afterwards no container of {service} exists"
        return "; afterwards " + ", ".join(
            f"{c.get('Name', '?')} is {c.get('State', '?')} ({c.get('Status', '?')}, image {c.get('Image', '?')})"
            for c in containers
        )


ACTING_VERBS = frozenset({"pull", "stop", "up"})
STATE_TIMEOUT = 30
REAP_TIMEOUT = 10


def _run_in_own_group(command: list[str], directory: Path, timeout: float) -> tuple[int, str, str]:
    """Run `command` in a new session (its own process group); on a timeout, or if this thread
    is interrupted, kill the whole group, so the Compose plugin dies with the docker CLI."""
    process = subprocess.Popen(
        command,
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=without_secrets(os.environ),
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:  # TimeoutExpired, KeyboardInterrupt: nothing of this run may go on
        _kill_group(process)
        raise
    return process.returncode, stdout, stderr


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.communicate(timeout=REAP_TIMEOUT)  # reaps the CLI; EOF once the group is gone
    except subprocess.TimeoutExpired:
        process.kill()  # a member left the group and still holds the pipes: stop waiting for it


def _ps_entries(output: str) -> list[dict[str, Any]]:
    """`docker compose ps --format json`: one object per line (Compose >= 2.21) or one array."""
    text = output.strip()
    try:
        if text.startswith("["):
            entries = json.loads(text)
        else:
            entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        return []
    return [entry for entry in entries if isinstance(entry, dict)]


def compose_command(compose_file: Path, compose_files: Sequence[Path] = ()) -> str:
    """The command a person types to act on the target as rollbot does, for next-step advice:
    `docker compose -f FILE` would drop the override file that rollbot's own runs keep."""
    listed = tuple(compose_files) or (() if compose_file.name in DEFAULT_NAMES else (compose_file,))
    folder = (listed[0] if listed else compose_file).parent
    files = "".join(f"-f {shlex.quote(str(path))} " for path in listed)
    return f"cd {shlex.quote(str(folder))} && docker compose {files}"


def _override_of(compose_file: Path) -> tuple[Path, ...]:
    """`docker-compose.override.yml` beside `docker-compose.yml` (either extension), if there."""
    stem = compose_file.name.rsplit(".", 1)[0]
    for suffix in (".yml", ".yaml"):
        override = compose_file.with_name(f"{stem}.override{suffix}")
        if override.is_file():
            return (override,)
    return ()


def _stamps(paths: Sequence[Path]) -> tuple[Any, ...]:
    """(path, inode, size, mtime) of each file; a missing file stamps as absent."""
    stamped: list[tuple[Any, ...]] = []
    for path in paths:
        try:
            stat = path.stat()
            stamped.append((str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns))
        except OSError:
            stamped.append((str(path), None))
    return tuple(stamped)


def _tail(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return " | ".join(lines[-OUTPUT_TAIL_LINES:]) or "(no output)"
