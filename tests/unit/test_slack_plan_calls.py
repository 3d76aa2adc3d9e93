"""A plan in Slack acts the way on-call works: it calls its approvers by name and again in its
thread when nobody acts, production buttons ask for confirmation naming what happens, and a plan
left alone is edited in place to "expired — plan again", whose button plans the same request.
Every Web API call goes through Prism with Slack's spec."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.brain.snapshots import take_snapshot
from bot.config import Config
from bot.planning.brain_plan import SCHEMA_LABEL
from handlers.ids import ActionId, ExpiredPlanActionId
from storage import RunStatus
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism

from .fakes import REPO, brain_config, make_brain, upgrade_brain
from .slack_bot import APPROVER, GROUPIE, ONCALL_GROUP, PLANS, REQUESTER, Bot, button, slack_bot, spec_complaints, wait


@pytest.fixture(scope="module")
def web_api() -> Iterator[tuple[FakeSlack, Prism]]:
    with FakeSlack(usergroups={ONCALL_GROUP: [GROUPIE]}) as slack, Prism(slack.url) as prism:
        yield slack, prism


@pytest.fixture
def slack(web_api: tuple[FakeSlack, Prism]) -> Iterator[FakeSlack]:
    fake, prism = web_api
    fake.reset()
    mark = prism.mark()
    yield fake
    assert spec_complaints(prism, mark) == []


def quick(reminder_minutes: float = 24 * 60, ttl_minutes: float = 15) -> Any:
    def edit(config: Config) -> Config:
        return config.model_copy(
            update={"approval_reminder_minutes": reminder_minutes, "plan_ttl_minutes": ttl_minutes}
        )

    return edit


def restore_needed(bot: Bot) -> None:
    """2.3.1 reads brain schema 1; a snapshot taken on it; 2.4.0 then migrated the brain to 2."""
    brain = bot.world.config.targets["engine"].brain
    assert brain is not None
    image = f"{REPO}:2.3.1"
    bot.world.docker.host.add(image)
    bot.world.docker.labels[image] = {SCHEMA_LABEL: "1"}
    take_snapshot(brain, "2.3.1")
    upgrade_brain(brain.path, schema=2, new_rows=2)


def test_a_restore_plan_calls_its_approvers_and_again_in_its_thread(
    tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]
) -> None:
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    with slack_bot(
        tmp_path,
        slack,
        web_api[1],
        edit=quick(reminder_minutes=0.01),
        brain=brain,
        environment="production",
        approvers=(APPROVER, ONCALL_GROUP),
    ) as bot:
        restore_needed(bot)
        bot.command("engine 2.3.1 5xx since 2.4.0")
        plan = bot.plan_message("2.3.1")
        text = str(plan["blocks"])
        assert f"<@{APPROVER}>" in text and f"<!subteam^{ONCALL_GROUP}>" in text and "Approval needed" in text

        approve = button(plan, ActionId.BRAIN_RESTORE_APPROVE)
        assert approve is not None
        confirm = approve["confirm"]
        assert confirm["title"]["text"] == "Restore the brain?"
        said = confirm["text"]["text"]
        assert "engine (production): 2.4.0 → 2.3.1" in said and "row(s) leave the live brain" in said
        assert "episodes 2" in said and "forensic copy" in said
        cancel = button(plan, ActionId.CANCEL)
        assert cancel is not None and "confirm" not in cancel

        thread = wait(lambda: slack.thread(PLANS, plan["ts"])[1:], what="the approvers called again in the thread")
        assert f"<!subteam^{ONCALL_GROUP}>" in thread[0]["text"] and "Still waiting" in thread[0]["text"]


def test_a_decided_plan_calls_nobody_again(tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]) -> None:
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    with slack_bot(
        tmp_path, slack, web_api[1], edit=quick(reminder_minutes=0.02), brain=brain, approvers=(APPROVER,)
    ) as bot:
        restore_needed(bot)
        bot.command("engine 2.3.1")
        plan = bot.plan_message("2.3.1")
        bot.click(ActionId.CANCEL, button(plan, ActionId.CANCEL)["value"], plan, REQUESTER)  # type: ignore[index]
        [run] = bot.journal.runs()
        wait(lambda: bot.journal.run(run.id).status is RunStatus.CANCELLED, what="the plan cancelled")
        bot.services.outbox.drain()
        time.sleep(2.5)  # well past the reminder's 1.2 s
        assert slack.thread(PLANS, plan["ts"])[1:] == []


@pytest.mark.parametrize("environment, confirmed", [("production", True), ("staging", False)])
def test_roll_back_asks_for_confirmation_on_production_naming_the_versions(
    tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism], environment: str, confirmed: bool
) -> None:
    with slack_bot(tmp_path, slack, web_api[1], environment=environment) as bot:
        bot.command("engine 2.3.1 health failing")
        approve = button(bot.plan_message("2.3.1"), ActionId.APPROVE)
        assert approve is not None
        if confirmed:
            assert approve["confirm"]["title"]["text"] == "Roll back engine?"
            assert approve["confirm"]["text"]["text"] == "engine (production): 2.4.0 → 2.3.1."
            assert approve["confirm"]["confirm"]["text"] == "Roll back"
        else:
            assert "confirm" not in approve


def test_an_expired_plan_is_edited_in_place_and_plans_the_same_request_again(
    tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]
) -> None:
    with slack_bot(tmp_path, slack, web_api[1], edit=quick(ttl_minutes=0.02)) as bot:
        bot.command("engine 2.3.1 health failing")
        plan = bot.plan_message("2.3.1")
        [run] = bot.journal.runs()

        def expired() -> dict[str, Any] | None:
            now = slack.messages(PLANS)[0]
            return now if "Expired — plan again" in str(now["blocks"]) else None

        edited = wait(expired, what="the plan edited to expired")
        assert edited["ts"] == plan["ts"] and button(edited, ActionId.APPROVE) is None
        again = button(edited, ExpiredPlanActionId.PLAN_AGAIN)
        assert again is not None and again["value"] == run.id
        assert bot.journal.run(run.id).status is RunStatus.CANCELLED
        assert "expired before it was confirmed" in (bot.journal.run(run.id).error or "")

        bot.click(ExpiredPlanActionId.PLAN_AGAIN, run.id, edited, APPROVER)
        fresh = wait(lambda: len(slack.messages(PLANS)) == 2 and slack.messages(PLANS)[1], what="a fresh plan")
        assert button(fresh, ActionId.APPROVE) is not None
        new = next(r for r in bot.journal.runs() if r.id != run.id)
        assert (new.to_version, new.reason, new.requester, new.status) == (
            "2.3.1",
            "health failing",
            APPROVER,
            RunStatus.PLANNED,
        )
        wait(lambda: "planned again by" in str(slack.messages(PLANS)[0]["blocks"]), what="the old plan says so")
