"""`/rollback check` in Slack, signed as Slack signs it, every Web API call checked by Prism:
the verdict with its evidence in the channel, and its button planning the rollback it recommends."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from handlers.ids import ActionId, CheckActionId
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
from tests.integration.slack_harness import (
    COMMAND_CHANNEL,
    INCIDENT_CHANNEL,
    assert_blocks_valid,
    button,
    serving,
    slack_web_api,
    wait_for,
)
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

REQUESTER = "U0REQUEST1"
BASELINE_SECONDS = 11


@pytest.fixture(scope="module", autouse=True)
def metrics_images() -> None:
    build_metrics_images()


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with slack_web_api() as both:
        yield both


def test_check_posts_the_verdict_and_its_button_plans_the_rollback(
    tmp_path: Path, web_api: tuple[FakeSlack, Prism]
) -> None:
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    with deployment(tmp_path, running=BROKEN) as deployed, serving(deployed, slack, prism) as bot:
        acked = bot.command("check engine", REQUESTER)
        assert acked.status == 200 and "Checking engine against the runbook's criteria" in acked.body

        verdict = wait_for(
            lambda: next(
                (m for m in slack.messages(COMMAND_CHANNEL) if "Should engine be rolled back" in str(m)), None
            ),
            60,
            "the check's verdict",
        )
        text = str(verdict["blocks"])
        assert "/health is not ok" in text and f"running: {BROKEN}, up since" in text
        assert "not measured: error rate and p95 latency (no metrics.prometheus_url)" in text
        plan_button = button(verdict, CheckActionId.PLAN)
        assert plan_button is not None
        target, version = plan_button["value"].split(" ")
        assert target == "engine" and version in verdict["text"]

        clicked = bot.click(CheckActionId.PLAN, plan_button["value"], REQUESTER, verdict)
        assert clicked.status == 200
        plan = bot.plan_message(f"{BROKEN} → {version}")
        assert button(plan, ActionId.APPROVE) is not None
        assert "/health is not ok" in str(plan["blocks"]), "the plan shows the same evidence"

        assert_blocks_valid(slack.messages(COMMAND_CHANNEL))
        assert list(prism.violations(since=mark)) == []


def test_check_of_an_unknown_target_is_refused_in_the_ack(tmp_path: Path, web_api: tuple[FakeSlack, Prism]) -> None:
    slack, prism = web_api
    slack.reset()
    with deployment(tmp_path, running=HEALTHY) as deployed, serving(deployed, slack, prism) as bot:
        acked = bot.command("check nowhere", REQUESTER)
        assert acked.status == 200 and "Unknown target `nowhere`; configured targets: engine." in acked.body
        healthy = bot.command("check engine", REQUESTER)
        assert healthy.status == 200
        verdict = wait_for(
            lambda: next(
                (m for m in slack.messages(COMMAND_CHANNEL) if "Should engine be rolled back" in str(m)), None
            ),
            60,
            "the check's verdict",
        )
        assert "Don't roll back: /health is ok (judged on health alone)" in verdict["text"]
        assert button(verdict, CheckActionId.PLAN) is None


def test_rollback_captures_the_bad_window_and_uploads_its_chart_into_the_thread(
    tmp_path: Path, web_api: tuple[FakeSlack, Prism]
) -> None:
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    with (
        deployment(tmp_path, running=HEALTHY, repository=METRICS_REPOSITORY) as deployed,
        prometheus(tmp_path / "prometheus", deployed.port) as url,
        load(deployed.port),
    ):
        configure(deployed, url, soak_seconds=3)
        wait_for_series(url, ERROR_RATE)
        time.sleep(BASELINE_SECONDS)
        deployed.deploy(BROKEN)
        time.sleep(6)
        with serving(deployed, slack, prism) as bot:
            bot.command(f"engine {HEALTHY} turns failing", REQUESTER)
            plan = bot.plan_message(f"{BROKEN}")
            assert "error rate" in str(plan["blocks"]) and "Roll back to" in str(plan["blocks"])
            approve = button(plan, ActionId.APPROVE)
            assert approve is not None
            bot.click(ActionId.APPROVE, approve["value"], REQUESTER, plan)
            final = wait_for(
                lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "All clear" in str(m)), None),
                120,
                "the all-clear",
            )
            assert "errors recovered: health ok and error rate" in final["text"]
            announcement = slack.messages(INCIDENT_CHANNEL)[0]
            [chart] = wait_for(
                lambda: [f for f in slack.files(INCIDENT_CHANNEL, announcement["ts"]) if f["name"].endswith(".png")],
                30,
                "the chart in the thread (beside the replaced version's logs)",
            )
            run_id = approve["value"]
            postmortem = wait_for(
                lambda: (p := deployed.folder / "postmortems" / run_id / "postmortem.md").is_file() and p,
                60,
                "the postmortem",
            )

    assert chart["name"] == "rollback-window.png" and chart["content"].startswith(b"\x89PNG\r\n\x1a\n")
    folder = postmortem.parent
    with Image.open(folder / "rollback-window.png") as png:
        png.verify()  # decodes: a PNG, whole
    with Image.open(folder / "rollback-window.png") as png:
        assert png.size == (1000, 600)
    rows = list(csv.reader((folder / "bad-window.csv").open()))
    assert rows[0] == ["time_utc", "error rate", "p95 latency seconds"]
    assert max(float(row[1]) for row in rows[1:] if row[1]) > 0.2, rows
    document = postmortem.read_text()
    assert "Verdict when planned: Roll back" in document
    assert "After the rollback: errors recovered" in document
    assert "bad-window.csv" in document and "rollback-window.png" in document
    # files_upload_v2's two methods are checked against the overlay written from Slack's reference.
    assert [str(v) for v in prism.violations(since=mark)] == []
