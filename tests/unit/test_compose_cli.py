"""ComposeCli runs Compose as the operator would and asks it once per change of its files.

The `docker` here is a small stand-in program that records its arguments and folder and answers
`config` the way Compose v2 does; the real Compose is exercised in tests/integration."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bot.adapters.compose import ComposeCli
from bot.errors import ComposeError

FAKE_DOCKER = """\
import json, os, sys
arguments = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps({"cwd": os.getcwd(), "args": arguments}) + "\\n")
files = [arguments[i + 1] for i, a in enumerate(arguments) if a == "--file"]
verb = [a for i, a in enumerate(arguments) if a != "--file" and (i == 0 or arguments[i - 1] != "--file")][1:]
if verb[:3] == ["config", "--format", "json"]:
    name = "FAKE_DOCKER_MODEL_FILES" if files and os.environ.get("FAKE_DOCKER_MODEL_FILES") else "FAKE_DOCKER_MODEL"
    print(os.environ[name])
elif verb[:2] == ["config", "--hash"]:
    print(verb[2], "cafe1234")
elif verb[:2] == ["config", "--environment"]:
    print(os.environ.get("FAKE_DOCKER_ENVIRONMENT", "HOME=/root"))
"""

MODEL = {"name": "owners", "services": {"engine": {"image": "reg/engine:2.4.0"}}}


@pytest.fixture
def docker_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "bin" / "docker"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n" + FAKE_DOCKER)
    script.chmod(0o755)
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("FAKE_DOCKER_MODEL", json.dumps(MODEL))
    return script


def calls(tmp_path: Path) -> list[dict[str, object]]:
    log = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def owners_folder(tmp_path: Path, override: bool = True) -> Path:
    folder = tmp_path / "owners"
    folder.mkdir()
    (folder / "docker-compose.yml").write_text("services:\n  engine:\n    image: reg/engine:2.4.0\n")
    if override:
        (folder / "docker-compose.override.yml").write_text("services:\n  engine:\n    ports: ['8080:8080']\n")
    (folder / ".env").write_text("COMPOSE_PROJECT_NAME=owners\n")
    return folder


def test_default_name_uses_discovery_from_the_folder_and_finds_the_override(
    tmp_path: Path, docker_binary: Path
) -> None:
    folder = owners_folder(tmp_path)
    found: list[tuple[str, str]] = []
    cli = ComposeCli(
        folder / "docker-compose.yml",
        lambda p, s: found.append((p, s)) or ["c2", "c1"],
        docker_binary=str(docker_binary),
    )
    service = cli.service("engine")
    assert (service.project, service.image, service.config_hash) == ("owners", "reg/engine:2.4.0", "cafe1234")
    assert service.files == (folder / "docker-compose.yml", folder / "docker-compose.override.yml")
    assert cli.container_ids("engine") == ["c2", "c1"] and found == [("owners", "engine")]
    first = calls(tmp_path)[0]
    assert first == {"cwd": str(folder), "args": ["compose", "config", "--format", "json"]}, "no --file: discovery"
    cli.pull("engine")
    assert calls(tmp_path)[-1]["args"] == ["compose", "pull", "--quiet", "engine"]


def test_answers_are_kept_until_a_file_they_depend_on_changes(tmp_path: Path, docker_binary: Path) -> None:
    folder = owners_folder(tmp_path)
    cli = ComposeCli(folder / "docker-compose.yml", lambda p, s: [], docker_binary=str(docker_binary))
    cli.service("engine")
    asked = len(calls(tmp_path))
    for _ in range(5):
        ComposeCli(folder / "docker-compose.yml", lambda p, s: [], docker_binary=str(docker_binary)).service("engine")
    assert len(calls(tmp_path)) == asked, "a new plan with unchanged files does not start compose"
    (folder / ".env").write_text("COMPOSE_PROJECT_NAME=renamed\n")
    cli.service("engine")
    assert len(calls(tmp_path)) == 2 * asked, "a changed .env asks Compose again"
    (folder / "docker-compose.override.yml").write_text("services:\n  engine:\n    ports: ['9090:8080']\n")
    cli.service("engine")
    assert len(calls(tmp_path)) == 3 * asked, "so does a changed override"


def test_listed_files_and_unusual_names_are_passed_as_files(tmp_path: Path, docker_binary: Path) -> None:
    folder = owners_folder(tmp_path)
    listed = (folder / "docker-compose.yml", folder / "prod.yml")
    (folder / "prod.yml").write_text("services: {}\n")
    service = ComposeCli(listed[0], lambda p, s: [], listed, docker_binary=str(docker_binary)).service("engine")
    assert service.files == listed
    assert calls(tmp_path)[0]["args"][:5] == ["compose", "--file", str(listed[0]), "--file", str(listed[1])]
    (folder / "engine.yml").write_text("services: {}\n")
    ComposeCli(folder / "engine.yml", lambda p, s: [], docker_binary=str(docker_binary)).service("engine")
    assert calls(tmp_path)[-1]["args"][:3] == ["compose", "--file", str(folder / "engine.yml")]


def test_compose_file_from_env_is_taken_from_composes_own_environment(
    tmp_path: Path, docker_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = owners_folder(tmp_path, override=False)
    (folder / "prod.yml").write_text("services: {}\n")
    monkeypatch.setenv("FAKE_DOCKER_ENVIRONMENT", "COMPOSE_FILE=docker-compose.yml:prod.yml\nHOME=/root")
    service = ComposeCli(folder / "docker-compose.yml", lambda p, s: [], docker_binary=str(docker_binary)).service(
        "engine"
    )
    assert service.files == (folder / "docker-compose.yml", folder / "prod.yml")


def test_files_rollbot_cannot_name_are_a_clear_error(
    tmp_path: Path, docker_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discovery read something else than the compose file and its override: say so, edit nothing."""
    folder = owners_folder(tmp_path)
    monkeypatch.setenv("FAKE_DOCKER_MODEL_FILES", json.dumps({**MODEL, "name": "other"}))
    cli = ComposeCli(folder / "docker-compose.yml", lambda p, s: [], docker_binary=str(docker_binary))
    with pytest.raises(ComposeError, match="compose_files"):
        cli.service("engine")


def test_a_service_compose_does_not_know_is_one_line(tmp_path: Path, docker_binary: Path) -> None:
    folder = owners_folder(tmp_path)
    cli = ComposeCli(folder / "docker-compose.yml", lambda p, s: [], docker_binary=str(docker_binary))
    with pytest.raises(ComposeError, match="no service 'worker' there \\(services: engine\\)"):
        cli.service("worker")


SLOW_DOCKER = """\
import json, os, pathlib, subprocess, sys
verb = [a for a in sys.argv[1:] if a != "compose"][0]
if verb == "up":
    # Like the real CLI: `docker` runs the Compose plugin as a child process and waits for it.
    plugin = subprocess.Popen([sys.executable, "-c", "import pathlib, sys, time; time.sleep(30); "
                               "pathlib.Path(sys.argv[1]).write_text('up finished')", os.environ["UP_MARKER"]])
    pathlib.Path(os.environ["PLUGIN_PID"]).write_text(str(plugin.pid))
    plugin.wait()
elif verb == "ps":
    print(json.dumps({"Name": "owners-engine-1", "Service": "engine", "State": "exited",
                      "Status": "Exited (137) 2 seconds ago", "Image": "reg/engine:2.3.1"}))
"""


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_a_timed_out_compose_is_killed_with_its_plugin_and_the_state_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin outlived a kill of `docker` and finished its `up` later; now the whole process
    group dies at the timeout, and the error says what the containers are doing afterwards."""
    script = tmp_path / "bin" / "docker"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n" + SLOW_DOCKER)
    script.chmod(0o755)
    marker, plugin_pid = tmp_path / "up-finished", tmp_path / "plugin.pid"
    monkeypatch.setenv("UP_MARKER", str(marker))
    monkeypatch.setenv("PLUGIN_PID", str(plugin_pid))
    folder = owners_folder(tmp_path)
    cli = ComposeCli(folder / "docker-compose.yml", lambda p, s: [], docker_binary=str(script), up_timeout=5)
    with pytest.raises(ComposeError) as timed_out:
        cli.up("engine")
    assert plugin_pid.exists(), "the stand-in plugin started"
    assert not _alive(int(plugin_pid.read_text())), "the plugin died with the docker CLI"
    assert not marker.exists(), "the plugin did not finish its up"
    message = str(timed_out.value)
    assert message.startswith(
        "docker compose up --detach engine: no answer within 5s; it was killed with its process group"
    )
    assert "afterwards owners-engine-1 is exited (Exited (137) 2 seconds ago, image reg/engine:2.3.1)" in message
