"""The Bolt app, built by a function: no module-global App, everything injected."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt import App, BoltContext, BoltResponse
from slack_sdk import WebClient

from bot.config import Settings
from bot.core.rollbot import Rollbot
from bot.errors import ConfigError
from handlers import actions, checks, commands, fallback, home, known_bad
from handlers.directory import SlackDirectory
from handlers.outbox import Outbox
from handlers.poster import SlackPoster
from handlers.services import Services


def web_client(settings: Settings) -> WebClient:
    if settings.slack_bot_token is None:
        raise ConfigError("environment: SLACK_BOT_TOKEN is required to talk to Slack")
    return WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)


def build_services(rollbot: Rollbot, client: WebClient) -> Services:
    """What talks to Slack, without the Bolt app: `serve` adds the app; a terminal run uses it to
    report in the incident channel."""
    poster = SlackPoster(client)
    return Services(rollbot=rollbot, poster=poster, outbox=Outbox(), directory=SlackDirectory(poster))


def build_app(settings: Settings, rollbot: Rollbot, client: WebClient | None = None) -> tuple[App, Services]:
    client = client or web_client(settings)
    services = build_services(rollbot, client)
    app = App(
        client=client,
        # Bolt never verifies: the door in handlers/server.py checks the signature over the bytes
        # Slack sent, with a secret it has judged strong, and hands Bolt only checked fields,
        # re-encoded. Socket Mode requests are not signed at all (see handlers/server.py).
        signing_secret="",
        token_verification_enabled=False,
        request_verification_enabled=False,
        # Unhandled commands, buttons and payload types reach fallback.on_error, not a 404.
        raise_error_for_unhandled_request=True,
        # Listeners only parse, ack and hand work to the core's executor, so they run on the
        # request's own thread: no hop to Bolt's listener pool, no 10 ms polling for the ack.
        process_before_response=True,
        logger=logging.getLogger("rollbot.slack"),
    )

    @app.middleware
    def inject_services(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:
        context["services"] = services
        return next()

    if rollbot.tickets is not None:
        rollbot.tickets.on_created(services.link_ticket_later)
    app.error(fallback.on_error)
    commands.register(app)
    actions.register(app)
    checks.register(app)
    home.register(app)
    known_bad.register(app)
    return app, services
