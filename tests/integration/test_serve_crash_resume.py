"""`rollbot serve` killed at every step boundary of a brain rollback, then restarted and resumed.

A brain rollback of the demo Engine is driven from Slack (command, approver's click) on the real
Docker daemon. The serving process SIGKILLs itself right after a step's end is journaled
(`ROLLBOT_FAILPOINTS=step:after:<step>`), or is killed by the test in the middle of the
drain-stop. After a restart, the incident channel must get a report of the run with Resume and
Abort; the approver's Resume must bring the run to success, with the snapshot in place, the
original brain in the forensic folder, and the compose file changed in the image line only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.ids import ActionId, RecoveryActionId
from storage import RunStatus, StepStatus
from tests.integration.brains import digests
from tests.integration.demo import BROKEN, HEALTHY, REPOSITORY, Deployment, changed_lines, deployment, kill, wait_until
from tests.integration.slack_harness import (
    INCIDENT_CHANNEL,
    Bot,
    assert_blocks_valid,
    button,
    serving,
    slack_web_api,
    wait_for,
)
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

REQUESTER, APPROVER = "U0REQUEST1", "U0APPROVER"
STEPS = ["capture_logs", "stage_snapshot", "set_image_tag", "pull", "stop", "swap_brain", "start", "verify_health"]
KILL_POINTS = [f"step:after:{step}" for step in STEPS] + ["mid-drain-stop", "sigterm-mid-drain-stop"]


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with slack_web_api() as both:
        yield both


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_serve_reports_the_run_and_resume_finishes_it(
    tmp_path: Path, web_api: tuple[FakeSlack, Prism], point: str
) -> None:
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    with deployment(tmp_path, running=HEALTHY, brain=True, drain_seconds=2) as deployed:
        snapshot, original = _broken_release_with_a_snapshot(deployed)
        compose_before = deployed.compose_file.read_text()
        failpoints = {"ROLLBOT_FAILPOINTS": point} if point.startswith("step:") else {}

        with serving(deployed, slack, prism, extra_env=failpoints, log_name="serve-1.log") as bot:
            run_id = _approve_brain_restore(bot, slack)
            if point == "mid-drain-stop":
                _during_the_drain(deployed, run_id, lambda: kill(bot.process))
            elif point == "sigterm-mid-drain-stop":
                _during_the_drain(deployed, run_id, bot.process.terminate)
                assert bot.process.wait(timeout=120) == 0, "SIGTERM: a clean exit once the drain-stop ended"
                _assert_shut_down_at_the_step_boundary(deployed, run_id, slack)
            if point != "sigterm-mid-drain-stop":
                assert bot.process.wait(timeout=120) == -9, "the serving process died by SIGKILL"
                assert deployed.journal().run(run_id).status is RunStatus.RUNNING, "nobody has looked at it yet"
        stopped_in = deployed.journal().run(run_id)

        with serving(deployed, slack, prism, log_name="serve-2.log") as bot:
            report = wait_for(lambda: _report_of(slack, run_id), 60, "the report of the interrupted run")
            step = deployed.journal().run(run_id).current_step
            assert f"during step `{step}`" in report["text"] or f"during step {step}" in report["text"]
            assert "container:" in report["text"] and "health:" in report["text"]
            resume = button(report, RecoveryActionId.RESUME)
            assert resume is not None and resume["value"] == run_id
            assert button(report, RecoveryActionId.ABORT) is not None

            bot.click(RecoveryActionId.RESUME, run_id, REQUESTER, report, channel=INCIDENT_CHANNEL)
            refusal = wait_for(lambda: slack.ephemerals(REQUESTER), 30, "the non-approver's refusal")
            assert "only an approver of engine can resume" in refusal[-1]["text"]

            bot.click(RecoveryActionId.RESUME, run_id, APPROVER, report, channel=INCIDENT_CHANNEL)
            final = wait_for(
                lambda: next((m for m in slack.messages(INCIDENT_CHANNEL) if "All clear" in str(m)), None),
                120,
                "the all-clear after the resume",
            )
            assert f"engine is healthy on {HEALTHY}" in final["text"]

            run = deployed.journal().run(run_id)
            assert run.status is RunStatus.SUCCEEDED, run.error
            assert [s.status for s in run.steps] == [StepStatus.SUCCEEDED] * len(STEPS)
            assert [e.kind for e in run.events].count("run.resumed") == 1
            assert deployed.container().attrs["Config"]["Image"] == f"{REPOSITORY}:{HEALTHY}"
            wait_until(lambda: (a := deployed.health()) is not None and a.status_code == 200, 30, what="/health ok")
            assert digests(deployed.brain) == digests(snapshot), "the snapshot is the brain now"
            [forensic] = (deployed.brain.parent / "rollbot-forensic").glob(f"{run_id}/brain.sqlite")
            assert digests(forensic) == original, "the brain it replaced is kept whole"
            assert not list(deployed.brain.parent.glob(".brain.sqlite.rollbot-staged-*"))
            assert changed_lines(compose_before, deployed.compose_file.read_text()) == [
                (f"    image: {REPOSITORY}:{BROKEN}\n", f"    image: {REPOSITORY}:{HEALTHY}\n")
            ]
            closed = next(m for m in slack.messages(INCIDENT_CHANNEL) if m["ts"] == report["ts"])
            assert button(closed, RecoveryActionId.RESUME) is None, "the report's buttons are gone once used"
            assert_blocks_valid(slack.messages(INCIDENT_CHANNEL, replies=True))
            assert prism.violations(since=mark) == []
            assert "Traceback" not in bot.log()
        print(
            f"\n{point}: stopped in {stopped_in.current_step} "
            f"({[s.status.value for s in stopped_in.steps].count('succeeded')} steps done); resumed to "
            f"{run.status.value} in {run.summary.get('seconds')}s, downtime {run.summary.get('downtime_seconds')}s"
        )


def _broken_release_with_a_snapshot(deployed: Deployment) -> tuple[Path, dict[str, Any]]:
    """2.3.1 remembers, a snapshot is taken, 2.4.0 is deployed (brain schema 2) and remembers too."""
    deployed.remember(3)
    assert deployed.rollbot("snapshot", "engine").returncode == 0
    [snapshot] = deployed.snapshots.glob("*.sqlite")
    deployed.deploy(BROKEN)
    deployed.remember(2)
    return snapshot, digests(deployed.brain)


def _approve_brain_restore(bot: Bot, slack: FakeSlack) -> str:
    assert bot.command(f"engine {HEALTHY} 2.4.0 cannot read its memory", REQUESTER).status == 200
    plan = bot.plan_message("Brain restore")
    approve = button(plan, ActionId.BRAIN_RESTORE_APPROVE)
    assert approve is not None
    assert bot.click(ActionId.BRAIN_RESTORE_APPROVE, approve["value"], APPROVER, plan).status == 200
    return str(approve["value"])


def _during_the_drain(deployed: Deployment, run_id: str, signal: Callable[[], None]) -> None:
    """Signal the process while `docker compose stop` waits for the Engine's 2 s drain."""
    journal = deployed.journal()
    wait_until(lambda: journal.run(run_id).current_step == "stop", 60, interval=0.05, what="the drain-stop")
    time.sleep(0.7)
    signal()


def _assert_shut_down_at_the_step_boundary(deployed: Deployment, run_id: str, slack: FakeSlack) -> None:
    """The drain-stop was let finish; the run ended before the swap, journaled, and the channel was told."""
    run = deployed.journal().run(run_id)
    assert run.status is RunStatus.INTERRUPTED and run.error == "rollbot was shut down before step swap_brain"
    assert {s.name: s.status for s in run.steps}["stop"] is StepStatus.SUCCEEDED
    assert {s.name: s.status for s in run.steps}["swap_brain"] is StepStatus.PENDING
    assert f"rollbot resume {run_id}" in (run.next_action or "")
    told = [m for m in slack.messages(INCIDENT_CHANNEL) if "interrupted" in m.get("text", "")]
    assert told, "the channel heard the run stop before the process exited"


def _report_of(slack: FakeSlack, run_id: str) -> dict[str, Any] | None:
    return next(
        (
            m
            for m in slack.messages(INCIDENT_CHANNEL)
            if "was interrupted" in m.get("text", "") and run_id in str(m.get("blocks"))
        ),
        None,
    )
