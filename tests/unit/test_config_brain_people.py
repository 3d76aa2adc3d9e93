"""`brain.affected` and `brain.external_calls`: names that go into SQL are checked when the file
is read, and a wrong one is one ConfigError naming the file, the key and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.config import ExternalCallsConfig, load_config
from bot.errors import ConfigError

BASE = """\
targets:
  engine:
    compose_file: docker-compose.yml
    service: engine
    health_url: http://127.0.0.1:8080/health
    brain:
      path: data/brain.sqlite
      snapshots_dir: data/snapshots
"""


def write(folder: Path, brain_extra: str) -> Path:
    path = folder / "rollbot.yaml"
    path.write_text(BASE + textwrap.indent(textwrap.dedent(brain_extra), "      "), encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_affected_and_external_calls_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        affected: {conversations: [user_id, conversation_id], feedback: [user_id]}
        external_calls: {table: tool_calls, tool: tool, at: created_at, outcome: outcome, destructive: [send_email, delete_resource]}
        """,
    )
    brain = load_config(path).targets["engine"].brain
    assert brain is not None
    assert brain.affected == {"conversations": ("user_id", "conversation_id"), "feedback": ("user_id",)}
    assert brain.external_calls == ExternalCallsConfig(
        table="tool_calls",
        tool="tool",
        at="created_at",
        outcome="outcome",
        destructive=("send_email", "delete_resource"),
    )


def test_without_them_nothing_is_counted_or_listed(tmp_path: Path) -> None:
    brain = load_config(write(tmp_path, "")).targets["engine"].brain
    assert brain is not None and brain.affected == {} and brain.external_calls is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'affected: {conversations: ["user id"]}',
            "targets.engine.brain.affected: expected a conversations.column name (letters, digits and _, not first a digit), not 'user id'",
        ),
        (
            'affected: {"conv; DROP TABLE x": [user_id]}',
            "targets.engine.brain.affected: expected a table name (letters, digits and _, not first a digit), not 'conv; DROP TABLE x'",
        ),
        (
            "affected: {conversations: []}",
            "targets.engine.brain.affected: expected at least one column that identifies a user or a conversation for 'conversations'",
        ),
        (
            "affected: {feedback: [user_id, user_id]}",
            "targets.engine.brain.affected: expected each column of 'feedback' once",
        ),
        (
            "external_calls: {table: tool_calls, tool: tool, at: created_at, destructive: [send_email], where: x}",
            "targets.engine.brain.external_calls.where: unknown key",
        ),
        (
            "external_calls: {table: tool_calls, tool: tool, at: created_at, destructive: []}",
            "targets.engine.brain.external_calls.destructive",
        ),
        (
            "external_calls: {table: tool_calls, tool: tool, destructive: [send_email]}",
            "targets.engine.brain.external_calls.at",
        ),
        (
            'external_calls: {table: tool_calls, tool: "tool)--", at: created_at, destructive: [send_email]}',
            "targets.engine.brain.external_calls.tool: expected a column name (letters, digits and _, not first a digit), not 'tool)--'",
        ),
    ],
)
def test_bad_names_and_unknown_keys_are_refused_by_name(tmp_path: Path, extra: str, expected: str) -> None:
    path = write(tmp_path, extra)
    message = config_error(path)
    assert message.startswith(f"{path}: ")
    assert expected in message
