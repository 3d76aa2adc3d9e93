"""The main flows on an Engine deployment rollbot did not shape, from both front ends, no `--brain`.

The owners' Engine (tests/integration/outside.py): images with no rollbot label, port and brain
volume in docker-compose.override.yml, COMPOSE_PROJECT_NAME in .env, a one-off container of the
service, and the runbook's own `brain-pre-upgrade.db` taken by hand with `sqlite3 .backup`. Each
story starts on 2.3.1, takes the hand snapshot, deploys 2.4.0 (which migrates the brain to schema 2,
or, with `migrates=False`, leaves it alone) and writes the bad window. rollbot has seen nothing of
it before: the brain question is decided from the snapshot's time against the upgrade, or asked.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from handlers.ids import ActionId, AnswerActionId
from storage import RunStatus
from tests.integration.brains import digests
from tests.integration.demo import changed_lines, non_empty_lines, wait_until
from tests.integration.outside import BROKEN, HEALTHY, ONEOFF_MARKER, REPOSITORY, Outside, outside_deployment
from tests.integration.slack_harness import (
    COMMAND_CHANNEL,
    assert_blocks_valid,
    button,
    serving,
    slack_web_api,
    wait_for,
)
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

REQUESTER, APPROVER = "U0REQUEST1", "U0APPROVER"
INFERRED = "inferred from brain-pre-upgrade.db, taken before 2.4.0 started"


@contextmanager
def upgraded(
    tmp_path: Path, migrates: bool = True, snapshot_mtime_after_upgrade: bool = False, oneoff: bool = True
) -> Iterator[Outside]:
    """2.3.1 writes 3 turns, the owners snapshot by hand, 2.4.0 goes live and writes 2 turns.
    Without `oneoff` no one-off shares ./data: a brain restore refuses while one runs."""
    with outside_deployment(
        tmp_path, BROKEN, before=(HEALTHY,), hand_snapshot=True, brain=True, migrates=migrates, oneoff=oneoff
    ) as deployed:
        assert deployed.hand_snapshot.is_file()
        assert deployed.health() is not None and deployed.health().status_code == 503
        deployed.remember(2)
        if snapshot_mtime_after_upgrade:  # copied back into place from backup storage after the upgrade
            now = time.time()
            os.utime(deployed.hand_snapshot, (now, now))
        yield deployed


def assert_on_healthy_and_files_kept(deployed: Outside, files_before: dict[str, str], oneoff: str = "running") -> None:
    """2.3.1 answers on the override's port; only the tag line of the base file changed; the
    one-off container (when there is one) was left alone; the captured log is the service's."""
    wait_until(lambda: (a := deployed.health()) is not None and a.status_code == 200, 30, what="/health ok")
    assert deployed.health().json()["version"] == HEALTHY
    assert deployed.container().attrs["Config"]["Image"] == f"{REPOSITORY}:{HEALTHY}"
    after = deployed.files()
    assert after["docker-compose.override.yml"] == files_before["docker-compose.override.yml"]
    assert after[".env"] == files_before[".env"]
    [(old, new)] = changed_lines(files_before["docker-compose.yml"], after["docker-compose.yml"])
    assert old.replace(BROKEN, HEALTHY) == new
    if deployed.oneoff_name is not None:
        assert deployed.oneoff().status == oneoff
    run = deployed.journal().runs()[0]
    log = Path(run.summary["log_file"]).read_text()
    assert f"engine {BROKEN}:" in log and ONEOFF_MARKER not in log


# --- the terminal --------------------------------------------------------------------------------------------


def test_terminal_image_only_when_the_upgrade_did_not_migrate(tmp_path: Path) -> None:
    with upgraded(tmp_path, migrates=False) as deployed:
        files, brain = deployed.files(), digests(deployed.brain)
        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes", "--reason", "5xx since 2.4.0")
        assert done.returncode == 0, done.stdout + done.stderr
        assert INFERRED in done.stdout and "the upgrade did not migrate the brain" in done.stdout
        assert "Brain restore" not in done.stdout
        assert digests(deployed.brain) == brain, "the brain was kept, bad window and all"
        assert_on_healthy_and_files_kept(deployed, files)
        assert deployed.journal().runs()[0].summary["brain"] == "not restored"


def test_terminal_check_judges_the_owners_engine_on_health_alone(tmp_path: Path) -> None:
    """No Prometheus configured: the verdict rests on /health and says what it did not measure;
    the plan of the rollback it recommends shows the same evidence."""
    with upgraded(tmp_path, migrates=False) as deployed:
        check = deployed.rollbot("check", "engine")
        again = deployed.rollbot("check", "engine")
        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes")
    assert check.returncode == 3, check.stdout + check.stderr
    assert re.match(r"Roll back to \S+: /health is not ok", check.stdout), check.stdout
    # The owners' compose files define no healthcheck: rollbot's own probes date the failure.
    first_failing = re.search(r"not ok since (\S+) UTC \(rollbot's probes, first failing in check\)", check.stdout)
    assert first_failing is not None, check.stdout
    assert f"not ok since {first_failing.group(1)} UTC (rollbot's probes, first failing in check)" in again.stdout
    assert f"running: {BROKEN}, up since" in check.stdout
    assert "not measured: error rate and p95 latency (no metrics.prometheus_url)" in check.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Evidence (the runbook's when to roll back)" in done.stdout
    assert "not measured: error rate and p95 latency (no metrics.prometheus_url)" in done.stdout


def test_terminal_brain_restore_when_the_upgrade_migrated(tmp_path: Path) -> None:
    """The one-off shares ./data, so it holds the brain: the restore is refused naming it, and goes
    ahead once the owners have stopped it."""
    with upgraded(tmp_path) as deployed:
        files, snapshot = deployed.files(), digests(deployed.hand_snapshot)
        assert digests(deployed.brain)["#user_version"][0] == 2 and snapshot["#user_version"][0] == 1
        brain = digests(deployed.brain)
        refused = deployed.rollbot("rollback", "engine", HEALTHY, "--yes")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        [line] = non_empty_lines(refused.stderr)
        assert f"container {deployed.oneoff_name} mounts" in line, line
        assert (deployed.files(), digests(deployed.brain)) == (files, brain)
        subprocess.run(["docker", "stop", "--time", "1", deployed.oneoff().name], check=True, capture_output=True)

        done = deployed.rollbot("rollback", "engine", HEALTHY, "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert INFERRED in done.stdout and "the upgrade migrated the brain to 2" in done.stdout
        assert digests(deployed.brain) == snapshot
        assert_on_healthy_and_files_kept(deployed, files, oneoff="exited")
        assert deployed.health().json()["brain_schema"] == 1, (
            "the Engine reads the restored brain through the override's volume"
        )
        run = deployed.journal().runs()[0]
        assert run.summary["brain"] == "restored from brain-pre-upgrade.db" and run.summary["rows_rolled_back"] > 0
        seen = deployed.journal().schema_seen("engine", HEALTHY)
        assert seen is not None and seen.schema == 1, "the run recorded what 2.3.1 is healthy on"


def test_terminal_question_refused_with_yes_then_answered_at_the_prompt(tmp_path: Path) -> None:
    """Nothing tells (the snapshot's time is after the upgrade): --yes exits 2 with the question on
    one line and touches nothing; at the prompt `restore` is answered, then the plan confirmed."""
    with upgraded(tmp_path, snapshot_mtime_after_upgrade=True, oneoff=False) as deployed:
        files, brain, container = deployed.files(), digests(deployed.brain), deployed.container().id
        refused = deployed.rollbot("rollback", "engine", HEALTHY, "--yes")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        [line] = non_empty_lines(refused.stderr)
        assert line.startswith("refused: cannot tell which brain schema 2.3.1 reads") and "Restore the brain" in line
        assert (deployed.files(), digests(deployed.brain), deployed.container().id) == (files, brain, container)
        assert deployed.journal().runs()[0].status is RunStatus.CANCELLED

        answered = subprocess.run(
            deployed.command("rollback", "engine", HEALTHY),
            input="restore\ny\n",
            cwd=deployed.folder,
            env=deployed.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert answered.returncode == 0, answered.stdout + answered.stderr
        assert "restore / keep / cancel" in answered.stdout and "restore as asked" in answered.stdout
        assert digests(deployed.brain) == digests(deployed.hand_snapshot)
        assert_on_healthy_and_files_kept(deployed, files)


# --- Slack ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with slack_web_api() as both:
        yield both


def all_clear(slack: FakeSlack) -> dict:
    return wait_for(
        lambda: next((m for m in slack.messages(COMMAND_CHANNEL) if "All clear" in str(m)), None), 180, "the all-clear"
    )


def test_slack_image_only_and_brain_restore_without_asking(tmp_path: Path, web_api: tuple[FakeSlack, Prism]) -> None:
    slack, prism = web_api
    for number, migrates in enumerate((False, True)):
        slack.reset()
        mark = prism.mark()
        with (
            upgraded(tmp_path / str(number), migrates=migrates, oneoff=not migrates) as deployed,
            serving(deployed, slack, prism) as bot,
        ):
            files, snapshot = deployed.files(), digests(deployed.hand_snapshot)
            if migrates:  # the form: the previous good version preselected, the reason typed
                view = bot.open_form(REQUESTER)
                picked = next(b for b in view["blocks"] if b.get("block_id") == "form_version")["element"]
                assert picked["initial_option"]["value"] == f"engine:{HEALTHY}"
                values = {
                    "form_target": {"form_target": {"type": "static_select", "selected_option": {"value": "engine"}}},
                    "form_version": {
                        "form_version": {"type": "static_select", "selected_option": picked["initial_option"]}
                    },
                    "form_other_version": {"form_other_version": {"type": "plain_text_input", "value": None}},
                    "form_reason": {"form_reason": {"type": "plain_text_input", "value": "5xx since the upgrade"}},
                }
                submitted = bot.submit_form(REQUESTER, view, values)
                assert submitted.status == 200 and submitted.body in ("", "{}"), submitted
            else:
                assert bot.command(f"engine {HEALTHY} 5xx since the upgrade", REQUESTER).status == 200
            plan = bot.plan_message(BROKEN)
            assert INFERRED in str(plan["blocks"]) and button(plan, AnswerActionId.RESTORE) is None
            if migrates:
                approve = button(plan, ActionId.BRAIN_RESTORE_APPROVE)
                assert approve is not None
                bot.click(ActionId.BRAIN_RESTORE_APPROVE, approve["value"], APPROVER, plan)
            else:
                approve = button(plan, ActionId.APPROVE)
                assert approve is not None and button(plan, ActionId.BRAIN_RESTORE_APPROVE) is None
                bot.click(ActionId.APPROVE, approve["value"], REQUESTER, plan)
            assert f"engine is healthy on {HEALTHY}" in all_clear(slack)["text"]
            assert_on_healthy_and_files_kept(deployed, files)
            assert (digests(deployed.brain) == snapshot) is migrates
            assert_blocks_valid(slack.messages(COMMAND_CHANNEL, replies=True))
            assert prism.violations(since=mark) == []
            assert "Traceback" not in bot.log()


def test_slack_question_answered_by_button_in_place(tmp_path: Path, web_api: tuple[FakeSlack, Prism]) -> None:
    """Nothing tells: the plan asks with two buttons; Restore replaces the plan in the same message
    with a restore plan, which the requester cannot approve and an approver does."""
    slack, prism = web_api
    slack.reset()
    mark = prism.mark()
    with (
        upgraded(tmp_path, snapshot_mtime_after_upgrade=True, oneoff=False) as deployed,
        serving(deployed, slack, prism) as bot,
    ):
        files = deployed.files()
        bot.command(f"engine {HEALTHY} memory errors", REQUESTER)
        asked = bot.plan_message("Restore the brain or keep it?")
        restore = button(asked, AnswerActionId.RESTORE)
        assert restore is not None and button(asked, AnswerActionId.KEEP) is not None
        assert (
            "brain-pre-upgrade.db" in restore["text"]["text"]
            and "row(s) leave the live brain" in restore["text"]["text"]
        )
        assert button(asked, ActionId.APPROVE) is None and button(asked, ActionId.BRAIN_RESTORE_APPROVE) is None

        bot.click(AnswerActionId.RESTORE, restore["value"], REQUESTER, asked)
        replaced = wait_for(
            lambda: next(
                (
                    m
                    for m in slack.messages(COMMAND_CHANNEL)
                    if m["ts"] == asked["ts"] and button(m, ActionId.BRAIN_RESTORE_APPROVE)
                ),
                None,
            ),
            60,
            "the plan replaced in place by a restore plan",
        )
        approve = button(replaced, ActionId.BRAIN_RESTORE_APPROVE)
        assert approve["value"] != restore["value"], "the answer made a fresh plan"
        assert deployed.journal().run(restore["value"]).status is RunStatus.CANCELLED

        bot.click(ActionId.BRAIN_RESTORE_APPROVE, approve["value"], REQUESTER, replaced)
        refusal = wait_for(lambda: slack.ephemerals(REQUESTER), 30, "the requester's refusal")
        assert "approver other than the requester" in refusal[-1]["text"]
        bot.click(ActionId.BRAIN_RESTORE_APPROVE, approve["value"], APPROVER, replaced)

        assert "brain restored from brain-pre-upgrade.db" in all_clear(slack)["text"]
        assert digests(deployed.brain) == digests(deployed.hand_snapshot)
        assert_on_healthy_and_files_kept(deployed, files)
        assert_blocks_valid(slack.messages(COMMAND_CHANNEL, replies=True))
        assert prism.violations(since=mark) == []
        assert "Traceback" not in bot.log()
