"""The regression eval as configured: a real command (no shell) or a URL, and what the config accepts."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from bot.adapters.regression_eval import EvalRunner
from bot.config import TargetConfig


def test_a_command_that_exits_0_passes() -> None:
    result = EvalRunner().run((sys.executable, "-c", "print('42 cases passed')"), timeout=30)
    assert result.passed and result.detail.endswith("passed")


def test_a_failing_command_fails_with_its_output() -> None:
    result = EvalRunner().run((sys.executable, "-c", "import sys; sys.exit('case 7: wrong answer')"), timeout=30)
    assert not result.passed
    assert result.detail.endswith("failed (exit 1): case 7: wrong answer")


def test_arguments_are_never_a_shell() -> None:
    result = EvalRunner().run(("echo ok; exit 1",), timeout=30)  # one argument: a program by that name
    assert not result.passed and "could not be started" in result.detail


def test_a_url_passes_on_2xx_only() -> None:
    answers = {"/ok": 200, "/bad": 500}
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(answers[r.url.path], text="x")))
    assert EvalRunner(client).run("http://127.0.0.1:9/ok", timeout=5).passed
    failed = EvalRunner(client).run("http://127.0.0.1:9/bad", timeout=5)
    assert not failed.passed and failed.detail == "http://127.0.0.1:9/bad answered HTTP 500: x"


@pytest.mark.parametrize("value", ["rm -rf /", []])
def test_the_config_takes_an_argument_list_or_a_url(value: object) -> None:
    with pytest.raises(ValidationError, match="regression_eval"):
        TargetConfig(
            compose_file=Path("c.yml"), service="engine", health_url="http://127.0.0.1:1/health", regression_eval=value
        )
