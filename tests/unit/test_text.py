"""The text both front ends share: every check result and every step status has one meaning
(a mark), and both the terminal and Slack can draw every mark, so no state crashes either."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.planning.preflight import CheckResult
from bot.terminal.render import GLYPHS
from bot.text import CHECK_MARKS, STEP_MARKS, Mark, duration
from handlers.blocks import EMOJI
from storage import StepStatus

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("result", list(CheckResult))
def test_every_check_result_has_a_mark_both_front_ends_draw(result: CheckResult) -> None:
    mark = CHECK_MARKS[result]
    assert GLYPHS[mark] and EMOJI[mark]


@pytest.mark.parametrize("status", list(StepStatus))
def test_every_step_status_has_a_mark_both_front_ends_draw(status: StepStatus) -> None:
    mark = STEP_MARKS[status]
    assert GLYPHS[mark] and EMOJI[mark]


def test_both_front_ends_draw_every_mark_there_is() -> None:
    assert set(GLYPHS) == set(Mark) == set(EMOJI)


def test_the_marks_keep_their_glyphs_and_emoji() -> None:
    """The meanings moved to one table; what a person sees did not change."""
    assert [GLYPHS[CHECK_MARKS[result]] for result in CheckResult] == [
        "[green]✓[/]",
        "[yellow]![/]",
        "[red]✗[/]",
        "[yellow]?[/]",
        "[dim]·[/]",
    ]
    assert [EMOJI[CHECK_MARKS[result]] for result in CheckResult] == [
        ":white_check_mark:",
        ":warning:",
        ":x:",
        ":question:",
        ":white_circle:",
    ]
    assert {status: EMOJI[STEP_MARKS[status]] for status in StepStatus} == {
        StepStatus.PENDING: ":white_circle:",
        StepStatus.RUNNING: ":hourglass_flowing_sand:",
        StepStatus.SUCCEEDED: ":white_check_mark:",
        StepStatus.FAILED: ":x:",
        StepStatus.SKIPPED: ":heavy_minus_sign:",
    }
    assert {status: GLYPHS[STEP_MARKS[status]] for status in StepStatus} == {
        StepStatus.PENDING: "[dim]·[/]",
        StepStatus.RUNNING: "[yellow]…[/]",
        StepStatus.SUCCEEDED: "[green]✓[/]",
        StepStatus.FAILED: "[red]✗[/]",
        StepStatus.SKIPPED: "[dim]–[/]",
    }


def test_durations_read_as_seconds_then_minutes() -> None:
    assert [duration(value) for value in (4.25, 59.4, 61, 3600, None, "soon")] == [
        "4.2s",
        "59.4s",
        "1m01s",
        "60m00s",
        "?",
        "?",
    ]


def test_the_shared_text_depends_on_no_front_end() -> None:
    """bot/text.py is what both front ends import; it must not pull in either one's toolkit."""
    tree = ast.parse((ROOT / "bot/text.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {
        name
        for name in imported
        if name.split(".")[0] in {"rich", "slack_sdk", "slack_bolt", "handlers"} or name.startswith("bot.terminal")
    }
