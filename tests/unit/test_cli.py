"""The terminal front end through its real entry point: exit codes, one-line reasons, no tracebacks.

Every command here is refused or answered before Docker is needed (the target and version checks
come first in bot/planning/plan.py), so these run without a daemon; DOCKER_HOST points nowhere to be sure.
Most tests call `bot.program.main()` in-process (fast); a few start `python -m bot` to see exactly what
a person sees, traceback or not.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.program import main
from storage import Journal, RunStatus, StepStatus, connect
from storage.repository import NewRun

from .fakes import COMPOSE_TEXT

CHECKOUT = Path(__file__).resolve().parents[2]

CONFIG = """\
targets:
  engine:
    environment: test
    compose_file: docker-compose.yml
    service: engine
    health_url: http://127.0.0.1:8080/health
"""


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Cli:
    """`rollbot` in a folder of its own, with its journal in that folder."""

    folder: Path
    database_url: str
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *arguments: str, env: dict[str, str] | None = None) -> Outcome:
        """Run the console script's `main()` here, as `rollbot ARGUMENTS`."""
        self.capsys.readouterr()
        with self.monkeypatch.context() as patch:
            patch.setattr(sys, "argv", ["rollbot", *arguments])
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            with pytest.raises(SystemExit) as exited:
                main()
        out, err = self.capsys.readouterr()
        code = exited.value.code
        return Outcome(code if isinstance(code, int) else int(code is not None), out, err)

    def process(self, *arguments: str) -> Outcome:
        """Run `python -m bot ARGUMENTS` as a separate process, with this checkout's code."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), *filter(None, [os.environ.get("PYTHONPATH")])])
        done = subprocess.run(
            [sys.executable, "-m", "bot", *arguments],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    (tmp_path / "rollbot.yaml").write_text(CONFIG)
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_TEXT)
    for key in list(os.environ):
        if key.startswith(("ROLLBOT_", "SLACK_", "JIRA_")) or key in (
            "FORCE_COLOR",
            "TTY_COMPATIBLE",
            "TTY_INTERACTIVE",
        ):
            monkeypatch.delenv(key)
    database_url = f"sqlite:///{tmp_path}/journal.db"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path, database_url, monkeypatch, capsys)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]


def history_json(cli: Cli) -> list[dict[str, object]]:
    result = cli("history", "--json")
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert isinstance(runs, list)
    return runs


def test_history_with_no_runs_says_so(cli: Cli) -> None:
    """A fresh journal: a sentence, not an empty table, and exit 0 — from the real `python -m bot`."""
    result = cli.process("history")
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "no runs yet", "")
    assert cli("history", "engine").stdout.strip() == "no runs yet for engine"
    assert history_json(cli) == []


def test_unknown_target_is_refused_with_one_line(cli: Cli) -> None:
    """Exit 2, the reason on stderr in one line, the plan on stdout, nothing touched, all journaled."""
    result = cli("rollback", "engnie", "2.3.1", "--yes")
    assert result.returncode == 2
    assert one_line(result.stderr) == "refused: unknown target 'engnie'; configured targets: engine"
    assert "target is configured" in result.stdout
    assert (cli.folder / "docker-compose.yml").read_text() == COMPOSE_TEXT
    [run] = history_json(cli)
    assert (run["status"], run["target"], run["to_version"]) == ("refused", "engnie", "2.3.1")


@pytest.mark.parametrize("version", ["2.3.1;rm -rf /", "../2.3.1", "-x", "$(reboot)", "2.3.1\nrm -rf /"])
def test_bad_version_is_refused_with_one_line(cli: Cli, version: str) -> None:
    """A version that is not a Docker tag: exit 2, said in one line, the compose file untouched."""
    result = cli("rollback", "--yes", "engine", "--", version)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("refused: the version ") and "is not a Docker tag" in line
    assert (cli.folder / "docker-compose.yml").read_text() == COMPOSE_TEXT
    assert [r["status"] for r in history_json(cli)] == ["refused"]


def test_bad_version_in_a_real_process_shows_no_traceback(cli: Cli) -> None:
    """What a person at the terminal sees for the classic injection attempt."""
    result = cli.process("rollback", "engine", "2.3.1;rm -rf /", "--yes")
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("refused: the version '2.3.1;rm -rf /' is not a Docker tag")
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_config_file_names_it(cli: Cli) -> None:
    """--config to a file that is not there: exit 2, the path in the message, no traceback."""
    missing = cli.folder / "nope" / "rollbot.yaml"
    result = cli.process("--config", str(missing), "history")
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert str(missing) in line and "not found" in line
    assert "Traceback" not in result.stderr


def test_rollbot_config_variable_is_used_and_named(cli: Cli) -> None:
    """ROLLBOT_CONFIG replaces ./rollbot.yaml, and a wrong one is named the same way."""
    result = cli("history", env={"ROLLBOT_CONFIG": "/etc/rollbot/missing.yaml"})
    assert result.returncode == 2
    assert "/etc/rollbot/missing.yaml" in one_line(result.stderr)


def test_default_config_is_rollbot_yaml_in_the_working_folder(cli: Cli) -> None:
    """Started elsewhere without a flag or variable, rollbot says it looked for ./rollbot.yaml."""
    elsewhere = cli.folder / "elsewhere"
    elsewhere.mkdir()
    cli.monkeypatch.chdir(elsewhere)
    result = cli("history")
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("rollbot.yaml: configuration file not found")


def test_invalid_config_names_the_key(cli: Cli) -> None:
    """A config mistake stops the command with the key path, before anything else happens."""
    (cli.folder / "rollbot.yaml").write_text(CONFIG + "    drain_timeout: soon\n")
    result = cli("rollback", "engine", "2.3.1", "--yes")
    assert result.returncode == 2
    assert "targets.engine.drain_timeout" in one_line(result.stderr)
    assert not (cli.folder / "journal.db").exists(), "nothing was journaled: nothing was done"


def test_usage_errors_exit_2_without_a_traceback(cli: Cli) -> None:
    """A missing argument, a typo'd command or a bad option value: 'nothing was done', exit 2, no trace."""
    mistakes = {
        "missing version": ["rollback", "engine"],
        "unknown command": ["rollbak", "engine", "2.3.1"],
        "bad option value": ["history", "--limit", "many"],
        "unknown option": ["rollback", "engine", "2.3.1", "--force"],
    }
    outcomes = {name: cli(*arguments) for name, arguments in mistakes.items()}
    wrong = {
        name: (result.returncode, result.stderr.strip().splitlines()[-1:])
        for name, result in outcomes.items()
        if result.returncode != 2 or "unexpected error" in result.stderr
    }
    assert wrong == {}
    assert "version" in outcomes["missing version"].stderr.lower()


def test_history_lists_runs_newest_first(cli: Cli) -> None:
    """Refused requests are history too; the table shows them with their ids."""
    cli("rollback", "nope", "1.0.0", "--yes")
    cli("rollback", "engine", "bad;version", "--yes")
    runs = history_json(cli)
    assert [(r["target"], r["status"]) for r in runs] == [("engine", "refused"), ("nope", "refused")]
    table = cli("history")
    assert table.returncode == 0
    assert all(str(r["id"]) in table.stdout for r in runs)
    only_engine = [r["target"] for r in json.loads(cli("history", "engine", "--json").stdout)]
    assert only_engine == ["engine"]


def test_a_run_left_by_a_dead_process_is_reported_as_interrupted(cli: Cli) -> None:
    """Any command first recovers runs whose process died, and tells the operator on stderr."""
    journal = Journal(connect(cli.database_url))
    run = journal.record_plan(
        NewRun(
            "engine",
            "2.3.1",
            "cli:bob",
            [("capture_logs", ""), ("set_image_tag", ""), ("pull", "")],
            from_version="2.4.0",
        ),
        actor="cli:bob",
    )
    dead_pid = 2**22 + 12345  # above the largest pid Linux hands out, so no such process
    journal.start(run.id, "cli:bob", owner=f"{socket.gethostname()}:{dead_pid}")
    journal.step_started(run.id, 0, "cli:bob")
    journal.step_finished(run.id, 0, "cli:bob", StepStatus.SUCCEEDED)
    journal.step_started(run.id, 1, "cli:bob")

    result = cli("history", "--json")
    assert result.returncode == 0
    assert f"run {run.id} of engine" in result.stderr and "set_image_tag" in result.stderr
    [shown] = json.loads(result.stdout)
    assert (shown["status"], shown["current_step"]) == ("interrupted", "set_image_tag")
    assert journal.run(run.id).status is RunStatus.INTERRUPTED


def test_a_run_of_a_live_process_is_left_running(cli: Cli) -> None:
    """This very process is alive: its run must not be declared interrupted by a `history`."""
    journal = Journal(connect(cli.database_url))
    run = journal.record_plan(NewRun("engine", "2.3.1", "cli:bob", [("pull", "")]), actor="cli:bob")
    journal.start(run.id, "cli:bob", owner=f"{socket.gethostname()}:{os.getpid()}")
    result = cli("history", "--json")
    assert result.returncode == 0 and result.stderr == ""
    assert [r["status"] for r in json.loads(result.stdout)] == ["running"]


# --- input that looks like terminal markup -------------------------------------------------------------


def test_version_that_looks_like_markup_is_refused_not_a_crash(cli: Cli) -> None:
    """'[/]' is not a tag: the refusal is exit 2 with one line, not an 'unexpected error'."""
    result = cli("rollback", "engine", "[/]", "--yes")
    assert "unexpected error" not in result.stderr
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("refused: the version '[/]'")


def test_history_survives_a_refused_target_that_looks_like_markup(cli: Cli) -> None:
    """One odd request must not break `rollbot history` for everyone afterwards."""
    cli("rollback", "[/]", "2.3.1", "--yes")
    assert [r["target"] for r in history_json(cli)] == ["[/]"]
    result = cli("history")
    assert "unexpected error" not in result.stderr
    assert result.returncode == 0
    assert "[/]" in result.stdout


# --- resume and abort -----------------------------------------------------------------------------------


def test_resume_and_abort_refuse_an_unknown_run_and_a_run_that_is_not_interrupted(cli: Cli) -> None:
    """Exit 2 with one line naming the run and why; the run is left as it was."""
    journal = Journal(connect(cli.database_url))
    refused = journal.record_plan(NewRun("engine", "2.3.1", "cli:bob", []), actor="cli:bob", refusal="no such tag")

    unknown = cli("resume", "20990101-000000-abcdef")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        2,
        "refused: run 20990101-000000-abcdef is not known to rollbot; see `rollbot history`",
    )
    for command in ("resume", "abort"):
        result = cli(command, refused.id)
        assert result.returncode == 2, result
        assert result.stderr.strip() == f"refused: run {refused.id} is refused, not interrupted; nothing was done"
    assert journal.run(refused.id).status is RunStatus.REFUSED
