"""`/rollback`: parse, ack within Slack's 3 seconds, hand the work to the core's executor."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.planning.plan import RollbackRequest
from handlers.blocks import drill_report_message, esc, history_message, plan_message, status_command_message
from handlers.directory import MembershipUnknown
from handlers.inbound import shown
from handlers.parsing import HELP, Command, CommandKind, ParseError, parse
from handlers.services import Services


def register(app: App) -> None:
    app.command("/rollback")(on_rollback)


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
    elif parsed.kind is CommandKind.ROLLBACK:
        _rollback(ack, services, parsed, user, channel)
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


def _rollback(ack: Ack, services: Services, parsed: Command, user: str, channel: str) -> None:
    assert parsed.target is not None and parsed.version is not None
    if _refused(ack, services, parsed.target, user):
        return
    ack(response_type="ephemeral", text=f"Planning the rollback of {parsed.target} to {parsed.version}…")
    request = RollbackRequest(parsed.target, parsed.version, user, parsed.reason, parsed.brain)
    services.guarded(channel, user, post_plan, request, channel)


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


def post_plan(services: Services, request: RollbackRequest, channel: str) -> None:
    """Plan (preflight runs here, after the ack) and post the plan where it was asked for."""
    planned = services.rollbot.plan(request)
    message = plan_message(planned.plan, planned.run)

    def post() -> None:
        posted = services.poster.post(channel, message)
        services.rollbot.remember(planned.run.id, plan_message={"channel": channel, "ts": posted.ts})

    services.outbox.send(post)


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
    services.outbox.send(lambda: services.poster.post(channel, message))


def _status(services: Services, respond: Respond) -> None:
    message = status_command_message(services.rollbot.status())
    respond(response_type="ephemeral", text=message.text, blocks=message.blocks)


def _history(services: Services, target: str | None, respond: Respond) -> None:
    message = history_message(services.rollbot.history(target, limit=15))
    respond(response_type="ephemeral", text=message.text, blocks=message.blocks)


def _snapshot(services: Services, target: str, user: str, respond: Respond) -> None:
    taken = services.rollbot.take_snapshot(target, user, services.directory.members_of)
    respond(
        response_type="in_channel",
        text=f":camera_with_flash: <@{user}> took a snapshot of {target}'s brain: `{taken.path.name}` "
        f"(schema {taken.schema_version}, {taken.size} bytes, while {taken.image_tag or 'no container'} ran).",
    )
