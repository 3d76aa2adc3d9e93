"""`/rollback`: parse, ack within Slack's 3 seconds, hand the work to the core's executor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk.errors import SlackApiError

from bot.errors import InvalidRequest, RollbotError
from bot.planning.approvals import Verdict
from bot.planning.plan import RollbackRequest
from handlers.blocks import drill_report_message, esc, history_message, status_command_message
from handlers.check_blocks import check_message
from handlers.directory import MembershipUnknown
from handlers.form import TargetChoices, form_view, read_form
from handlers.ids import FormBlock, ViewId
from handlers.inbound import shown
from handlers.parsing import HELP, Command, CommandKind, ParseError, parse
from handlers.poster import Posted
from handlers.services import Services
from storage import RunKind

log = logging.getLogger(__name__)


def register(app: App) -> None:
    app.command("/rollback")(on_rollback)
    app.view(ViewId.ROLLBACK_FORM.value)(on_form_submitted)


def on_rollback(ack: Ack, command: dict[str, Any], context: BoltContext, respond: Respond) -> None:
    services: Services = context["services"]
    user, channel = str(command.get("user_id") or ""), str(command.get("channel_id") or "")
    try:
        parsed = parse(command.get("text", ""))
    except ParseError as error:
        ack(response_type="ephemeral", text=f"Not understood: {esc(str(error))}.\n\n{HELP}")
        return
    if parsed.kind is CommandKind.HELP:
        ack(response_type="ephemeral", text=HELP)
    elif parsed.kind is CommandKind.FORM:
        _form(ack, services, str(command.get("trigger_id") or ""), user, channel)
    elif parsed.kind in (CommandKind.ROLLBACK, CommandKind.UPGRADE):
        _rollback(ack, services, parsed, user, channel, respond)
    elif parsed.kind is CommandKind.CLEAR:
        _clear(ack, services, parsed, user, channel, respond)
    elif parsed.kind is CommandKind.CHECK:
        assert parsed.target is not None, "the parser gives a check its target"
        if not _refused(ack, services, parsed.target, user):
            ack(response_type="ephemeral", text=f"Checking {parsed.target} against the runbook's criteria…")
            services.guarded(channel, user, _check, parsed.target, user, channel)
    elif parsed.kind is CommandKind.STATUS:
        ack(response_type="ephemeral", text="Checking every target…")
        services.guarded(channel, user, _status, respond)
    elif parsed.kind is CommandKind.DRILL:
        _drill(ack, services, parsed, user, channel)
    elif parsed.kind is CommandKind.HISTORY:
        ack(response_type="ephemeral", text="Reading the journal…")
        services.guarded(channel, user, _history, parsed.target, respond)
    else:
        assert parsed.target is not None, "the parser gives a snapshot its target"
        ack(response_type="ephemeral", text=f"Taking a snapshot of {parsed.target}'s brain…")
        services.guarded(channel, user, _snapshot, parsed.target, user, respond)


def _rollback(ack: Ack, services: Services, parsed: Command, user: str, channel: str, respond: Respond) -> None:
    assert parsed.target is not None
    if _refused(ack, services, parsed.target, user):
        return
    to = parsed.version or "its previous good version"
    what = "upgrade" if parsed.kind is CommandKind.UPGRADE else "rollback"
    ack(response_type="ephemeral", text=f"Planning the {what} of {parsed.target} to {to}…")
    kind = RunKind.UPGRADE if parsed.kind is CommandKind.UPGRADE else RunKind.ROLLBACK
    request = RollbackRequest(parsed.target, parsed.version or "", user, parsed.reason, parsed.brain, kind)

    def tell_requester(text: str) -> None:
        respond(response_type="ephemeral", text=text)

    services.guarded(channel, user, post_plan, request, channel, tell_requester)


def _clear(ack: Ack, services: Services, parsed: Command, user: str, channel: str, respond: Respond) -> None:
    """`/rollback clear TARGET VERSION reason…`: who may ask for the target may clear it, saying why."""
    assert parsed.target is not None and parsed.version is not None
    if _refused(ack, services, parsed.target, user):
        return
    ack(response_type="ephemeral", text=f"Clearing {parsed.version} of {parsed.target}…")
    services.guarded(channel, user, _clear_known_bad, parsed.target, parsed.version, user, parsed.reason, respond)


def _clear_known_bad(services: Services, target: str, version: str, user: str, reason: str, respond: Respond) -> None:
    cleared = services.rollbot.clear_known_bad(target, version, user, reason)
    respond(
        response_type="in_channel",
        text=f":white_check_mark: <@{user}> cleared {esc(version)} of {esc(target)} for deployment: {esc(reason)} "
        f"(it was rolled back by run(s) {', '.join(f'`{mark.run_id}`' for mark in cleared)}).",
    )


def _form(ack: Ack, services: Services, trigger_id: str, user: str, channel: str) -> None:
    """`/rollback` alone: the form. The ack goes first; the form opens right after it, on the
    command's trigger (valid for 3 seconds), with the versions rollbot knows."""
    if not trigger_id:
        ack(response_type="ephemeral", text=f"Slack sent no trigger to open the form with.\n\n{HELP}")
        return
    ack(response_type="ephemeral", text="Opening the rollback form…")
    services.guarded(channel, user, _open_form, trigger_id, channel)


def _open_form(services: Services, trigger_id: str, channel: str) -> None:
    rollbot = services.rollbot
    choices = []
    for target in rollbot.config.targets.values():
        try:
            versions, previous = rollbot.known_versions(target.name)
        except RollbotError as error:  # a target Docker cannot describe now: offered, typed version only
            log.warning("the form offers no versions of %s: %s", target.name, error)
            versions, previous = [], None
        asks = previous is not None and rollbot.asks_about_brain(target.name, previous.version)
        choices.append(TargetChoices(target.name, target.environment, versions, previous, asks))
    try:
        services.poster.open_view(trigger_id, form_view(choices, channel))
    except SlackApiError as error:  # e.g. expired_trigger_id: the 3 seconds passed
        problem = error.response.get("error") or "an error"
        raise InvalidRequest(
            f"the rollback form could not be opened (Slack answered `{problem}`); try again, or type "
            "`/rollback TARGET [VERSION] [reason]`"
        ) from None


def on_form_submitted(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
    """The form's Submit: field errors in the ack, or the plan posted as the command posts it."""
    services: Services = context["services"]
    user = str((body.get("user") or {}).get("id") or "")
    view = body.get("view") or {}
    environments = {name: target.environment for name, target in services.rollbot.config.targets.items()}
    read = read_form(view.get("state", {}).get("values", {}), view.get("private_metadata", ""), environments)
    if isinstance(read, dict):
        ack(response_action="errors", errors=read)
        return
    try:
        verdict = services.rollbot.may_request(user, read.target, services.directory.members_of)
    except MembershipUnknown as unknown:
        verdict = Verdict(False, str(unknown))
    if not verdict.allowed:
        ack(response_action="errors", errors={FormBlock.TARGET.value: verdict.reason[:150]})
        return
    ack()
    request = RollbackRequest(read.target, read.version, user, read.reason, read.brain)
    services.guarded(read.channel, user, post_plan, request, read.channel)


def _refused(ack: Ack, services: Services, target: str, user: str) -> bool:
    """An unknown target, or a person who may not ask for it: refused in the ack, by name."""
    config = services.rollbot.config
    if config.target(target) is None:
        known = ", ".join(sorted(config.targets))
        ack(response_type="ephemeral", text=f"Unknown target {shown(target)}; configured targets: {known}.\n\n{HELP}")
        return True
    try:  # the directory answers from its cache: this never waits on Slack
        verdict = services.rollbot.may_request(user, target, services.directory.members_of)
    except MembershipUnknown as unknown:
        ack(response_type="ephemeral", text=f":hourglass: {esc(str(unknown))}.")
        return True
    if not verdict.allowed:
        ack(response_type="ephemeral", text=f":no_entry: {esc(verdict.reason)}.")
        return True
    return False


def post_plan(
    services: Services, request: RollbackRequest, channel: str, tell_requester: Callable[[str], None] | None = None
) -> None:
    """Plan (preflight runs here, after the ack) and post the plan where it was asked for; a
    request without a version goes to the previous good version."""
    rollbot = services.rollbot
    planned = rollbot.plan(request) if request.version else rollbot.plan_previous_good(request)
    services.post_plan(planned, channel, tell_requester)


def _check(services: Services, target: str, user: str, channel: str) -> None:
    """The verdict goes to the channel: whoever is on call sees the same evidence."""
    message = check_message(target, services.rollbot.check(target), user)
    services.outbox.send(lambda: services.poster.post(channel, message))


def _drill(ack: Ack, services: Services, parsed: Command, user: str, channel: str) -> None:
    assert parsed.target is not None and parsed.version is not None
    if _refused(ack, services, parsed.target, user):
        return
    ack(
        response_type="in_channel",
        text=f":fire_drill: <@{user}> started a rollback drill of {esc(parsed.target)} with the "
        f"broken tag {parsed.version}; the report follows here.",
    )
    services.guarded(channel, user, _run_drill, parsed.target, parsed.version, user, channel, runs=True)


def _run_drill(services: Services, target: str, broken: str, user: str, channel: str) -> None:
    drill = services.rollbot.drill(target, broken, user, rollback_sink=services.progress_for(channel))
    message = drill_report_message(drill)
    chart = drill.summary.get("chart")
    posted: list[Posted] = []
    services.outbox.send(lambda: posted.append(services.poster.post(channel, message)), lane=f"channel:{channel}")
    if chart and Path(chart).is_file():  # the rollback's chart, as in its postmortem, in the report's thread

        def upload() -> None:
            where = posted[-1] if posted else None
            title = "Drill: error rate and p95 latency, upgrade to rollback"
            content = Path(chart).read_bytes()
            services.poster.upload(
                where.channel if where else channel, where.ts if where else None, Path(chart).name, content, title
            )

        services.outbox.send(upload, lane=f"channel:{channel}")


def _status(services: Services, respond: Respond) -> None:
    message = status_command_message(services.rollbot.status())
    respond(response_type="ephemeral", text=message.text, blocks=message.blocks)


def _history(services: Services, target: str | None, respond: Respond) -> None:
    message = history_message(services.rollbot.history(target, limit=15), services.rollbot.known_bad(target)[:20])
    respond(response_type="ephemeral", text=message.text, blocks=message.blocks)


def _snapshot(services: Services, target: str, user: str, respond: Respond) -> None:
    taken = services.rollbot.take_snapshot(target, user, services.directory.members_of)
    respond(
        response_type="in_channel",
        text=f":camera_with_flash: <@{user}> took a snapshot of {target}'s brain: `{taken.path.name}` "
        f"(schema {taken.schema_version}, {taken.size} bytes, while {taken.image_tag or 'no container'} ran).",
    )
