"""The program: `rollbot` and `python -m bot`.

The terminal and the Slack app are two front ends of one core. This module puts them together:
it builds the command-line app from the terminal's commands and adds `serve`, which starts the
Slack front end; it is the only module of bot/ that imports `handlers`, and only when `serve`
runs, so the terminal's commands never load Bolt. `main` is the one error sink of the program.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.exc import OperationalError

from bot import redaction
from bot.config import config_path, load_settings
from bot.core.rollbot import Rollbot
from bot.errors import RollbotError, report_unexpected
from bot.logs import use_json
from bot.terminal import checks, cli, maintenance
from bot.terminal.session import ALSO_REPORT, EXIT_FAILED, EXIT_NOTHING_DONE, AtExit, SinkFor, fail_line, rollbot_for

if TYPE_CHECKING:
    from handlers.outbox import Outbox

log = logging.getLogger("rollbot")


def build_command_line() -> typer.Typer:
    """The command-line app; the order of registration is the order `--help` lists commands in."""
    app = typer.Typer(
        help="Roll the Engine back by its runbook: plan, preflight, journaled steps, verified health.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_options)
    cli.register(app)
    maintenance.register(app)
    checks.register(app)
    app.command()(serve)
    return app


def _options(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config (default: $ROLLBOT_CONFIG or ./rollbot.yaml)")
    ] = None,
) -> None:
    ctx.obj = config_path(config)
    ctx.meta[ALSO_REPORT] = _slack_reporter


def _slack_reporter(rollbot: Rollbot, at_exit: AtExit) -> SinkFor | None:
    """With SLACK_BOT_TOKEN set, a run started at the terminal (rollback, resume, abort) is
    announced, followed and closed in its target's incident channel like one started in Slack.
    Its messages are delivered before the command exits."""
    settings = load_settings()
    if settings.slack_bot_token is None:
        return None
    from handlers.app import build_services, web_client

    services = build_services(rollbot, web_client(settings))
    at_exit(lambda: _deliver(services.outbox))
    return services.terminal_progress


def _deliver(outbox: Outbox) -> None:
    if not outbox.drain(timeout=60):
        log.warning("some Slack messages of this run were not delivered before exit")


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on (HTTP mode)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (HTTP mode)")] = 3000,
    log_format: Annotated[str, typer.Option(help="json (one object per line, with run_id) or text")] = "json",
) -> None:
    """Serve Slack: HTTP (POST /slack/events, GET /healthz), or Socket Mode when SLACK_APP_TOKEN is set."""
    from handlers.app import build_app
    from handlers.recovery import watch_interruptions
    from handlers.server import Door, serve_http, serve_socket_mode, signing_key

    settings = load_settings()
    socket_mode = settings.slack_app_token is not None
    if not socket_mode:  # checked before anything starts: a weak secret lets anyone act as Slack
        signing_key(settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None)
    if log_format == "json":
        use_json(logging.INFO)
    else:
        logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per /health poll is noise
    # Background threads (preflight, runs) must not hold the GIL for the default 5 ms slices
    # while a request waits for its ack; 1 ms slices cut the ack tail under load.
    sys.setswitchinterval(0.001)
    rollbot = rollbot_for(ctx)
    slack_app, services = build_app(settings, rollbot)
    services.watch_usergroups()  # before serving: acks answer from this cache, never from Slack
    _file_tickets_in_background(rollbot)
    watching = watch_interruptions(services)
    signal.signal(signal.SIGTERM, _stop_serving)
    try:
        if settings.slack_app_token is not None:
            serve_socket_mode(slack_app, rollbot.foreground, settings.slack_app_token.get_secret_value())
        else:
            assert settings.slack_signing_secret is not None  # signing_key refused to go on without it
            door = Door(slack_app, settings.slack_signing_secret.get_secret_value(), services.tell)
            metrics = lambda: rollbot.metrics() + services.outbox.metrics()  # noqa: E731 - the journal's and Slack's
            serve_http(door, rollbot.foreground, host, port, metrics=metrics)  # returns on SIGTERM or Ctrl-C
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        watching.set()
    _stop_gracefully(rollbot, services.outbox)


def _stop_serving(_signum: int, _frame: object) -> None:
    """SIGTERM: leave the serving loop (waitress closes its sockets on SystemExit); the runs in
    flight are then brought to a step boundary by `_stop_gracefully`."""
    raise SystemExit(0)


def _stop_gracefully(rollbot: Rollbot, outbox: Outbox) -> None:
    timeout = rollbot.config.shutdown_timeout_seconds
    log.warning(
        "rollbot is stopping: no new runs; runs in flight end at their next step boundary (at most %.0fs)", timeout
    )
    cut_short = rollbot.stop_gracefully(timeout)
    delivered = outbox.drain(timeout=15)
    if cut_short:
        log.warning("runs %s were still in a step and are journaled as interrupted", ", ".join(cut_short))
    if not delivered:
        log.warning("some Slack messages were not delivered before exit")
    logging.shutdown()
    os._exit(0)  # a step cut short still holds a worker thread; the journal already says where it was


def _file_tickets_in_background(rollbot: Rollbot, every_seconds: float = 10.0) -> None:
    """While serving, owed postmortems are retried when due (also those from before a restart)."""
    desk = rollbot.tickets
    if desk is None:
        return

    def loop() -> None:
        for problem in desk.problems():  # checked here, off the start's path: Jira may be slow
            log.error("%s", problem)
        while True:
            try:
                desk.process()
            except Exception:
                log.exception("the postmortem ticket loop failed once; it goes on")
            time.sleep(every_seconds)

    threading.Thread(target=loop, name="rollbot-tickets", daemon=True).start()


def main() -> None:
    """Entry point: click handles usage errors (exit 2); everything else meets one error sink."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        redaction.install(load_settings())
        build_command_line()()
    except RollbotError as error:
        fail_line(str(error))
        sys.exit(EXIT_NOTHING_DONE)
    except OperationalError as error:  # the journal's database is down or refuses us: not a bug
        reason = str(error.orig or error).strip().splitlines()[0][:300]
        fail_line(f"cannot use the journal database (DATABASE_URL): {reason}")
        sys.exit(EXIT_FAILED)
    except Exception as error:  # noqa: BLE001 - a bug: one line for the person, the trace for the log
        fail_line(report_unexpected(error, "running a command at the terminal"))
        sys.exit(EXIT_FAILED)
