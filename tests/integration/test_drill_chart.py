"""A drill draws the same chart as a real rollback: against a real Prometheus scraping the demo
Engine under load, the terminal's drill report names a PNG that decodes, and `/rollback drill`
uploads that chart into its report's thread (Web API calls checked by Prism)."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from storage import RunStatus
from tests.integration.demo import BROKEN, HEALTHY, deployment
from tests.integration.engine_metrics import (
    ERROR_RATE,
    METRICS_REPOSITORY,
    build_metrics_images,
    configure,
    load,
    prometheus,
    wait_for_series,
)
from tests.integration.slack_harness import COMMAND_CHANNEL, assert_blocks_valid, serving, slack_web_api, wait_for
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

REQUESTER = "U0REQUEST1"
BASELINE_SECONDS = 11  # a little over the configured 10 s baseline window
CHART_LINE = re.compile(r"chart of error rate and latency: (\S+\.png)")


@pytest.fixture(scope="module", autouse=True)
def metrics_images() -> None:
    build_metrics_images()


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with slack_web_api() as both:
        yield both


def assert_decodes(content: bytes) -> None:
    with Image.open(io.BytesIO(content)) as png:
        png.verify()  # decodes: a PNG, whole
    with Image.open(io.BytesIO(content)) as png:
        assert png.format == "PNG" and png.size == (1000, 600)


def test_drill_reports_the_rollback_chart_and_slack_gets_it_in_the_report_thread(
    tmp_path: Path, web_api: tuple[FakeSlack, Prism]
) -> None:
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    with (
        deployment(tmp_path, running=HEALTHY, health_timeout=8, repository=METRICS_REPOSITORY) as deployed,
        prometheus(tmp_path / "prometheus", deployed.port) as url,
        load(deployed.port),
    ):
        configure(deployed, url, soak_seconds=3)
        wait_for_series(url, ERROR_RATE)
        time.sleep(BASELINE_SECONDS)

        terminal = deployed.rollbot("drill", "engine", "--broken", BROKEN)
        assert terminal.returncode == 0, terminal.stdout + terminal.stderr
        named = CHART_LINE.search(terminal.stdout)
        assert named is not None, terminal.stdout
        drawn = Path(named.group(1))
        assert_decodes((drawn if drawn.is_absolute() else deployed.folder / drawn).read_bytes())

        with serving(deployed, slack, prism) as bot:
            acked = bot.command(f"drill engine {BROKEN}", REQUESTER)
            assert acked.status == 200 and "started a rollback drill" in acked.body
            report = wait_for(
                lambda: next(
                    (
                        m
                        for m in slack.messages(COMMAND_CHANNEL)
                        if m.get("text", "").startswith("drill ") and "succeeded" in m.get("text", "")
                    ),
                    None,
                ),
                240,
                "the drill's report",
            )
            [chart] = wait_for(
                lambda: [f for f in slack.files(COMMAND_CHANNEL, report["ts"]) if f["name"].endswith(".png")],
                60,
                "the chart in the report's thread",
            )
        drills = [run for run in deployed.runs() if run.kind == "drill"]

    assert [run.status for run in drills] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    from_slack = CHART_LINE.search(str(report["blocks"]))
    assert from_slack is not None, report["blocks"]
    assert chart["name"] == "rollback-window.png" == Path(from_slack.group(1)).name
    assert_decodes(chart["content"])
    assert Path(from_slack.group(1)) != Path(named.group(1)), "each drill's rollback draws its own chart"
    assert_blocks_valid(slack.messages(COMMAND_CHANNEL, replies=True))
    assert [str(v) for v in prism.violations(since=mark)] == []
