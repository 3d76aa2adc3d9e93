"""The runbook's drill of the demo Engine on the real Docker daemon, from the terminal and from Slack.

A drill breaks the service on purpose (2.4.0 cannot read the brain 2.3.1 left and fails its
health check), rolls it back with a brain restore, and reports where the time went; the second
drill's report compares with the first, and a rollback plan of the target then shows the
expected duration.
"""

from __future__ import annotations

from pathlib import Path

from storage import RunStatus
from tests.integration.brains import digests
from tests.integration.demo import BROKEN, HEALTHY, REPOSITORY, deployment
from tests.integration.slack_harness import COMMAND_CHANNEL, assert_blocks_valid, serving, slack_web_api, wait_for

PHASES = ["note_version", "snapshot", "upgrade_to_broken", "wait_until_broken", "rollback", "verify"]


def test_two_drills_from_the_terminal_then_one_from_slack(tmp_path: Path) -> None:
    with deployment(tmp_path, running=HEALTHY, brain=True, health_timeout=8) as deployed:
        deployed.remember(3)
        first = deployed.rollbot("drill", "engine", "--broken", BROKEN)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "no earlier successful drill of this target to compare with" in first.stdout
        brain_after_first = digests(deployed.brain)

        second = deployed.rollbot("drill", "engine", "--broken", BROKEN)
        assert second.returncode == 0, second.stdout + second.stderr
        print(second.stdout)  # the report, for whoever runs this with -s
        drills = [run for run in deployed.runs() if run.kind == "drill"]
        assert [run.status for run in drills] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
        newest, oldest = drills
        assert f"against the last drill ({oldest.id}): rollback" in second.stdout
        assert "← slowest" in second.stdout
        assert list(newest.summary["phases"]) == PHASES
        assert newest.summary["previous_drill"] == oldest.id
        expected_change = round(newest.summary["rollback_seconds"] - oldest.summary["rollback_seconds"], 2)
        assert newest.summary["rollback_change_seconds"] == expected_change
        assert max(newest.summary["rollback_steps"].values()) == newest.summary["slowest_step_seconds"]

        assert deployed.container().attrs["Config"]["Image"] == f"{REPOSITORY}:{HEALTHY}"
        assert digests(deployed.brain) == brain_after_first, "each drill restored the snapshot it took"
        rollbacks = [run for run in deployed.runs() if run.kind in ("rollback", "upgrade")]
        assert sorted(run.kind for run in rollbacks) == ["rollback", "rollback", "upgrade", "upgrade"], (
            "each drill: one upgrade and one rollback, both ordinary runs"
        )
        for run in rollbacks:
            approvals = [e for e in deployed.journal().run(run.id).events if e.kind == "run.approved"]
            assert [e.details["why"] for e in approvals] == ["approved automatically within the drill"]
            assert run.approver == "drill"
        history = deployed.rollbot("history")
        assert history.stdout.count(f"drill with broken {BROKEN}") == 2

        deployed.deploy(BROKEN)
        real = deployed.rollbot("rollback", "engine", HEALTHY, "--brain", "restore", "--yes")
        assert real.returncode == 0, real.stdout + real.stderr
        assert "Drills: expected duration from the last drills: ~" in real.stdout, real.stdout
        _drill_from_slack(deployed)


def _drill_from_slack(deployed) -> None:  # type: ignore[no-untyped-def]
    with slack_web_api() as (slack, prism), serving(deployed, slack, prism) as bot:
        mark = prism.mark()
        acked = bot.command(f"drill engine {BROKEN}", "U0REQUEST1")
        assert acked.status == 200 and "started a rollback drill" in acked.body
        report = wait_for(
            lambda: next(
                (
                    m
                    for m in slack.messages(COMMAND_CHANNEL)
                    if "drill " in m.get("text", "") and "succeeded" in m.get("text", "")
                ),
                None,
            ),
            180,
            "the drill's report",
        )
        assert "against the last drill" in str(report["blocks"])
        assert "rollback:" in str(report["blocks"]) and "total:" in str(report["blocks"])
        assert_blocks_valid(slack.messages(COMMAND_CHANNEL, replies=True))
        assert prism.violations(since=mark) == []
        assert "Traceback" not in bot.log()
