"""Telling the incident channel about interrupted runs, once each, with Resume and Abort.

Any replica may find a run whose process died (its pid is gone or its heartbeat stopped); the
journal lets exactly one of them report it. The report says where the run stopped and what the
service looks like now, so the approver who clicks knows what they are choosing.
"""

from __future__ import annotations

import logging
import threading

from bot.core.outcomes import ServiceState
from handlers.blocks import interruption_message, status_message
from handlers.services import Services
from storage import RunView

log = logging.getLogger(__name__)


def report_interruptions(services: Services) -> list[str]:
    """Mark the runs of dead processes interrupted and queue one report per unreported run."""
    rollbot = services.rollbot
    rollbot.recover_interrupted()
    reported = []
    for run, state in rollbot.interruptions_to_report():
        where = _channel_for(services, run)
        if where is None:
            log.warning("run %s was interrupted but has no channel to report in; see `rollbot history`", run.id)
            continue
        channel, notice = where
        _report(services, run, state, channel, notice)
        reported.append(run.id)
    return reported


def _channel_for(services: Services, run: RunView) -> tuple[str, str | None] | None:
    """The incident channel's id, else the channel the plan was posted in (with a notice saying
    why), else None when the run came from the terminal and no incident channel resolves."""
    plan_channel = (run.context.get("plan_message") or {}).get("channel")
    channel, notice = services.incident_channel(run.target, plan_channel or "")
    if not channel:
        return None
    return channel, notice


def _report(services: Services, run: RunView, state: ServiceState, channel: str, notice: str | None = None) -> None:
    message = interruption_message(run, state)
    lane = f"target:{run.target}"  # in order with the run's own progress messages

    if notice:  # its own call: a retried report must not repeat it
        services.outbox.send(lambda: services.poster.post(channel, notice), lane=lane, run_id=run.id)

    def post() -> None:
        posted = services.poster.post(channel, message)
        services.rollbot.remember(run.id, interruption_message={"channel": channel, "ts": posted.ts})

    services.outbox.send(post, lane=lane, run_id=run.id)
    where = run.context.get("status_message")
    if where:
        status = status_message(run)
        services.outbox.send(
            lambda: services.poster.update(where["channel"], where["ts"], status),
            key=f"status:{run.id}",
            lane=lane,
            run_id=run.id,
        )


def watch_interruptions(services: Services, every_seconds: float = 10.0) -> threading.Event:
    """While serving, look for interrupted runs now and every few seconds (a replica that died
    leaves its run to the others). Set the returned event to stop looking."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                report_interruptions(services)
            except Exception:
                log.exception("looking for interrupted runs failed once; it goes on")
            stop.wait(every_seconds)

    threading.Thread(target=loop, name="rollbot-interruptions", daemon=True).start()
    return stop
