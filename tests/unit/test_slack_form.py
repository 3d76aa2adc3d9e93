"""`/rollback` with no text opens a form (views.open on the command's trigger, right after the
ack); its submission plans exactly as the command does, or is refused with field errors. Every
Web API call goes through Prism with Slack's spec; requests are signed as Slack signs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.brain.snapshots import take_snapshot
from handlers.ids import ActionId, FormBlock, ViewId
from storage import RunStatus
from tests.slackapi.fake_slack import FakeSlack
from tests.slackapi.prism import Prism
from tests.slackapi.signing import new_trigger_id, view_submission

from .fakes import brain_config, make_brain, upgrade_brain
from .slack_bot import GROUPIE, ONCALL_GROUP, PLANS, REQUESTER, STRANGER, Bot, button, slack_bot, spec_complaints, wait


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


@pytest.fixture
def bot(tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]) -> Iterator[Bot]:
    with slack_bot(tmp_path, slack, web_api[1], requesters=(REQUESTER, ONCALL_GROUP)) as made:
        made.services.watch_usergroups().set()
        yield made


def open_form(bot: Bot, user: str = REQUESTER) -> dict[str, Any]:
    """`/rollback` alone: acked at once, and the form opened on that command's own trigger."""
    trigger = new_trigger_id()
    answer, seconds = bot.command("", user=user, trigger_id=trigger)
    assert answer.status == 200 and "Opening the rollback form" in answer.body, answer.body
    assert seconds < 1.0, "the ack does not wait for the form (bench/ack_latency.py measures acks)"
    view = wait(lambda: bot.slack.views(), what="the form opened")[-1]
    assert view["trigger_id"] == trigger
    return view


def values(version: str | None = None, typed: str = "", reason: str = "", target: str = "engine") -> dict[str, Any]:
    def picked(value: str | None) -> dict[str, Any]:
        option = {"text": {"type": "plain_text", "text": value}, "value": value} if value else None
        return {"type": "static_select", "selected_option": option}

    return {
        FormBlock.TARGET: {FormBlock.TARGET: picked(target)},
        FormBlock.VERSION: {FormBlock.VERSION: picked(version)},
        FormBlock.OTHER_VERSION: {FormBlock.OTHER_VERSION: {"type": "plain_text_input", "value": typed or None}},
        FormBlock.REASON: {FormBlock.REASON: {"type": "plain_text_input", "value": reason or None}},
    }


def submit(bot: Bot, view: dict[str, Any], filled: dict[str, Any], user: str = REQUESTER) -> dict[str, Any]:
    answer, _ = bot.send(view_submission(user, view, filled))
    assert answer.status == 200
    return json.loads(answer.body) if answer.body else {}


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def test_the_form_opens_on_the_commands_trigger_with_the_previous_good_version_preselected(
    bot: Bot, slack: FakeSlack
) -> None:
    view = open_form(bot)
    opened = slack.calls_to("views.open")
    assert len(opened) == 1 and view["callback_id"] == ViewId.ROLLBACK_FORM
    assert view["trigger_id"] == opened[0].params["trigger_id"] and view["trigger_id"].count(".") == 2
    assert json.loads(view["private_metadata"]) == {"channel": PLANS}
    target = block(view, FormBlock.TARGET)["element"]
    assert [o["value"] for o in target["options"]] == ["engine"] and target["initial_option"]["value"] == "engine"
    version = block(view, FormBlock.VERSION)["element"]
    assert [o["value"] for o in version["options"]] == ["engine:2.3.1", "engine:2.2.0"], "newest first"
    assert version["initial_option"]["value"] == "engine:2.3.1"
    assert "(previous good)" in version["initial_option"]["text"]["text"]
    assert block(view, FormBlock.OTHER_VERSION)["optional"] is True


def test_submitting_the_preselected_version_posts_the_plan_as_the_command_does(bot: Bot, slack: FakeSlack) -> None:
    view = open_form(bot)
    assert submit(bot, view, values("engine:2.3.1", reason="5xx since 2.4.0")) == {}
    plan = bot.plan_message("2.3.1")
    assert button(plan, ActionId.APPROVE) is not None
    [run] = bot.journal.runs()
    assert (run.to_version, run.requester, run.reason, run.status) == (
        "2.3.1",
        REQUESTER,
        "5xx since 2.4.0",
        RunStatus.PLANNED,
    )
    where = wait(lambda: bot.journal.run(run.id).context.get("plan_message"), what="the plan message remembered")
    assert where["channel"] == PLANS


def test_a_typed_version_wins_over_the_picked_one(bot: Bot) -> None:
    view = open_form(bot, user=GROUPIE)
    assert submit(bot, view, values("engine:2.3.1", typed="2.2.0"), user=GROUPIE) == {}
    bot.plan_message("2.2.0")
    [run] = bot.journal.runs()
    assert run.to_version == "2.2.0" and run.requester == GROUPIE


@pytest.mark.parametrize(
    "filled, field, says",
    [
        (values(typed="2.3.1;rm -rf /"), FormBlock.OTHER_VERSION, "is not a Docker tag"),
        (values(), FormBlock.VERSION, "pick a version, or type one below"),
        (values("payments:1.0", target="engine"), FormBlock.VERSION, "1.0 is a version of payments, not of engine"),
        (values("engine:2.3.1", target="ghost"), FormBlock.TARGET, "pick one of the configured targets"),
    ],
)
def test_bad_input_is_refused_with_field_errors_and_nothing_is_planned(
    bot: Bot, filled: dict[str, Any], field: str, says: str
) -> None:
    view = open_form(bot)
    answer = submit(bot, view, filled)
    assert answer["response_action"] == "errors" and says in answer["errors"][field], answer
    assert bot.journal.runs() == []


def test_a_stranger_is_refused_on_the_target_field(bot: Bot) -> None:
    view = open_form(bot, user=STRANGER)
    answer = submit(bot, view, values("engine:2.3.1"), user=STRANGER)
    assert "you are not one of the requesters of engine" in answer["errors"][FormBlock.TARGET]
    assert bot.journal.runs() == []


def test_production_needs_a_reason(tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]) -> None:
    with slack_bot(tmp_path, slack, web_api[1], environment="production") as bot:
        view = open_form(bot)
        answer = submit(bot, view, values("engine:2.3.1"))
        assert "a production rollback needs a reason" in answer["errors"][FormBlock.REASON]
        assert submit(bot, view, values("engine:2.3.1", reason="health failing")) == {}
        bot.plan_message("2.3.1")


def test_the_command_with_a_target_alone_plans_the_previous_good_version(bot: Bot) -> None:
    bot.journal.saw_schema("engine", "2.2.0", 1, "status")
    answer, _ = bot.command("engine")
    assert "Planning the rollback of engine to its previous good version" in answer.body
    plan = bot.plan_message("2.2.0")
    assert "version chosen by rollbot" in str(plan["blocks"]) and "previous good version" in str(plan["blocks"])


def test_the_form_asks_about_the_brain_only_when_rollbot_cannot_tell(
    tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]
) -> None:
    """No label, no sighting, no pre-upgrade snapshot to infer from: the form asks restore or
    keep for the preselected version, and the answer makes a plan that needs no question."""
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    with slack_bot(tmp_path, slack, web_api[1], brain=brain) as bot:
        take_snapshot(brain, None)  # taken by hand: it says nothing of the version it ran on
        upgrade_brain(brain.path, schema=2, new_rows=2)
        view = open_form(bot)
        asked = block(view, FormBlock.BRAIN)
        assert "rollbot cannot tell whether 2.3.1 reads it" in asked["label"]["text"]
        assert [o["value"] for o in asked["element"]["options"]] == ["restore", "keep"]
        filled = values("engine:2.3.1", reason="5xx")
        filled[FormBlock.BRAIN] = {FormBlock.BRAIN: {"type": "static_select", "selected_option": {"value": "restore"}}}
        assert submit(bot, view, filled) == {}
        plan = bot.plan_message("2.3.1")
        assert button(plan, ActionId.BRAIN_RESTORE_APPROVE) is not None, "restore, as answered in the form"


def test_the_form_does_not_ask_about_the_brain_when_the_facts_tell(
    tmp_path: Path, slack: FakeSlack, web_api: tuple[FakeSlack, Prism]
) -> None:
    brain = brain_config(tmp_path)
    make_brain(brain.path, schema=1)
    with slack_bot(tmp_path, slack, web_api[1], brain=brain) as bot:
        bot.journal.saw_schema("engine", "2.3.1", 1, "status")
        view = open_form(bot)
        assert all(b.get("block_id") != FormBlock.BRAIN for b in view["blocks"])


def test_a_form_slack_will_not_open_is_explained_to_the_person(bot: Bot, slack: FakeSlack) -> None:
    trigger = new_trigger_id()
    bot.command("", trigger_id=trigger)
    wait(lambda: slack.views(), what="the first form")
    bot.command("", trigger_id=trigger)  # a trigger used twice: Slack answers expired_trigger_id
    told = wait(lambda: slack.ephemerals(REQUESTER), what="the person told")
    assert "could not be opened (Slack answered `expired_trigger_id`)" in told[-1]["text"]
    assert "unexpected" not in told[-1]["text"]
