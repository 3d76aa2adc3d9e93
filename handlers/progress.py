"""The Slack progress sink: journal events in, messages in the incident channel out.

The announcement, one status message edited in place (rendered from the journal each time, so
it can never drift from the truth), thread replies for details, and the all-clear or failure
at the end. The sink only enqueues into the outbox: it never blocks the runner, and a Slack
failure never fails a rollback.

Every call names the channel by id (chat.update takes nothing else): the id Slack answers the
announcement with is the one the rest of the run uses. When the incident channel cannot be used
(not found, archived, rollbot not in it), progress goes to the channel the command came from,
which is told why, so no progress message is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.reporting.log_excerpts import error_lines, log_tail
from bot.text import outcome_label
from handlers.blocks import (
    announcement,
    closed_interruption_message,
    esc,
    final_message,
    status_message,
    step_detail,
    user,
)
from handlers.outbox import Outbox
from handlers.plan_blocks import closed_plan_message
from handlers.poster import SlackPoster, poster_for
from storage import EventKind, EventView, RunStatus, RunView

# What chat.postMessage answers when the channel itself cannot take the message.
UNUSABLE_CHANNEL = frozenset({"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived"})


log = logging.getLogger(__name__)


class SlackProgress:
    def __init__(
        self,
        slack: SlackPoster | WebClient,
        outbox: Outbox,
        read_run: Callable[[str], RunView],
        run: RunView,
        channel: str,
        ticket_link: Callable[[str], str | None] = lambda run_id: None,
        remember: Callable[..., None] = lambda run_id, **facts: None,
        fallback: str | None = None,
        notice: str | None = None,
    ) -> None:
        self._slack = poster_for(slack)
        self._outbox = outbox
        self._read = read_run
        self._run_id = run.id
        self._known = run  # the run as it was handed over: what is left to show if the journal dies
        self._channel = channel
        self._plan_message = run.context.get("plan_message") or {}
        self._ticket_link = ticket_link
        self._remember = remember
        # A resumed run goes on in the thread and the status message it already has.
        self._thread_ts: str | None = _ts_in(run.context.get("announcement"), channel)
        self._status_ts: str | None = _ts_in(run.context.get("status_message"), channel)
        self._interruption = run.context.get("interruption_message") or {}
        self._fallback = fallback
        self._notice = notice  # why progress is not in the incident channel, told once

    def _send(self, call: Callable[[], object], key: str | None = None) -> None:
        """Queue a call in the target's lane: a run's messages keep their order, and another
        target's stuck lane never delays them."""
        self._outbox.send(call, key=key, lane=f"target:{self._known.target}", run_id=self._run_id)

    def __call__(self, event: EventView) -> None:
        if event.kind == EventKind.RUN_STARTED:
            self._started()
        elif event.kind in (EventKind.RUN_RESUMED, EventKind.RUN_ABORTING):
            self._taken_up(event)
        elif event.kind in (EventKind.STEP_STARTED, EventKind.STEP_FINISHED):
            self._refresh_status()
            if event.kind == EventKind.STEP_FINISHED:
                self._detail(event.details, event.outcome)
                if event.details.get("step") == "capture_logs" and event.details.get("log_file"):
                    self._share_log(Path(str(event.details["log_file"])))
        elif event.kind == EventKind.SOAK_PROGRESS:
            left = event.details.get("seconds_left")
            self._refresh_status(f":hourglass: all-clear in {left}s if health and errors stay recovered")
        elif event.kind == EventKind.RUN_FINISHED:
            self._refresh_status()
            self._finished(event)

    def _started(self) -> None:
        run = self._read(self._run_id)
        self._send(lambda: self._post_announcement(run))
        self._send(self._post_status)
        if self._plan_message:
            # queued behind the announcement: the channel is known for sure only once it is posted
            self._send(lambda: self._update_plan_message(run, self._approved_note(run)))

    def _approved_note(self, run: RunView) -> str:
        where = f" — progress in <#{self._channel}>" if self._channel != self._plan_message.get("channel") else ""
        return f":arrow_forward: Approved by <@{run.approver}>; rolling back now{where}."

    def _taken_up(self, event: EventView) -> None:
        run = self._read(self._run_id)
        by, step = event.details.get("by"), event.details.get("step") or "start"
        if event.kind == EventKind.RUN_RESUMED:
            note = f":arrow_forward: Resumed by {user(str(by or 'someone'))} from step `{esc(step)}`."
        else:
            note = f":no_entry_sign: Aborted by {user(str(by or 'someone'))} at step `{esc(step)}`."
        if self._thread_ts is None:
            self._send(lambda: self._post_announcement(run))
        self._send(lambda: self._reply(note))
        if self._status_ts is None:
            self._send(self._post_status)
        else:
            self._refresh_status()
        if self._interruption:
            where = self._interruption
            message = closed_interruption_message(run, note)
            self._send(lambda: self._slack.update(where["channel"], where["ts"], message), key=f"interruption:{run.id}")

    def _post_announcement(self, run: RunView) -> None:
        self._post_notice(run)
        try:
            posted = self._slack.post(self._channel, announcement(run))
        except SlackApiError as error:
            problem = error.response.get("error")
            if problem not in UNUSABLE_CHANNEL or not self._fallback or self._fallback == self._channel:
                raise
            self._notice = (
                f":warning: The incident channel <#{self._channel}> could not be used "
                f"(Slack answered `{problem}`). Progress is posted here instead; invite rollbot to it "
                "or fix `incident_channel` in rollbot's YAML."
            )
            self._channel = self._fallback
            self._post_notice(run)
            posted = self._slack.post(self._channel, announcement(run))
        self._channel = posted.channel  # Slack's id, whatever was asked
        self._thread_ts = posted.ts
        self._remember(self._run_id, announcement={"channel": self._channel, "ts": posted.ts})
        ts = posted.ts
        self._outbox.send(lambda: self._remember_permalink(ts))  # behind what was queued: progress first

    def _remember_permalink(self, ts: str) -> None:
        """The announcement's link, for the postmortem ticket (Slack builds it; a workspace's
        domain is not known otherwise). Without it the ticket still names the run."""
        try:
            link = self._slack.permalink(self._channel, ts)
        except SlackApiError as error:
            log.warning("no permalink for the announcement of run %s: %s", self._run_id, error.response.get("error"))
            return
        if link is not None and link.startswith("https://"):
            self._remember(self._run_id, permalink=link)

    def _post_notice(self, run: RunView) -> None:
        """Tell the channel progress was moved to why, naming the person who started the run."""
        if not self._notice:
            return
        who = run.approver or run.requester
        text = f"{self._notice} ({user(who)})" if who else self._notice
        self._slack.post(self._channel, text)
        self._notice = None

    def _post_status(self) -> None:
        message = status_message(self._read(self._run_id))
        posted = self._slack.post(self._channel, message)
        self._status_ts = posted.ts
        self._remember(self._run_id, status_message={"channel": self._channel, "ts": posted.ts})

    def _refresh_status(self, note: str | None = None) -> None:
        def update() -> None:
            if self._status_ts is None:
                return
            message = status_message(self._read(self._run_id), note)
            self._slack.update(self._channel, self._status_ts, message)

        self._send(update, key=f"status:{self._run_id}")

    def _detail(self, details: dict[str, Any], outcome: str | None) -> None:
        text = step_detail(self._read(self._run_id), details, outcome)
        if text:
            self._send(lambda: self._reply(text))

    def _share_log(self, log_file: Path) -> None:
        """The last part of the bad version's logs, as a file in the announcement's thread (queued
        behind the announcement, so the thread exists when it is sent)."""
        version = self._known.from_version or "the replaced version"

        def upload() -> None:
            content = log_tail(log_file)
            title = f"Logs of {self._known.target} {version} (last {len(content) // 1024 or 1} KB)"
            self._slack.upload(self._channel, self._thread_ts, log_file.name, content, title)

        self._send(upload)

    def _finished(self, event: EventView) -> None:
        run = self._as_finished(event)
        log_file = run.summary.get("log_file")
        evidence = error_lines(Path(str(log_file))) if log_file and run.status is not RunStatus.SUCCEEDED else []

        def post_final() -> None:
            link = self._ticket_link(run.id)  # asked at delivery: a ticket filed meanwhile is linked
            message = final_message(run, link, evidence)
            self._slack.post(self._channel, message)
            self._remember(run.id, final_linked_ticket=link is not None)

        self._send(post_final)
        chart = next((Path(step.detail["chart"]) for step in run.steps if step.detail.get("chart")), None)
        if chart is not None:  # queued behind the announcement, so its thread is known
            self._send(lambda: self._upload_chart(chart))
        if run.next_action and run.status is not RunStatus.SUCCEEDED:
            self._send(lambda: self._reply(f":point_right: Next: {esc(run.next_action)}"))
        if self._plan_message:
            self._update_plan_message(run, f"Finished: *{esc(outcome_label(run))}* — see <#{self._channel}>.")

    def _as_finished(self, event: EventView) -> RunView:
        """The run as its end event tells it. When the journal could not take the outcome (it still
        says running, or cannot be read), the event is the only truth: the channel must still hear
        where the service is."""
        try:
            run = self._read(self._run_id)
        except Exception:  # noqa: BLE001 - the journal is down; the event carries the outcome
            log.warning("run %s ended but the journal cannot be read; reporting from the end event", self._run_id)
            run = self._known
        if run.status.is_final and run.status is not RunStatus.RUNNING and event.id != 0:
            return run
        details = dict(event.details)
        return replace(
            run,
            status=RunStatus(event.outcome or run.status),
            error=details.pop("error", run.error),
            next_action=details.pop("next_action", run.next_action),
            summary=details,
        )

    def _upload_chart(self, chart: Path) -> None:
        """The bad window's chart into the announcement's thread; a chart gone missing is said so."""
        try:
            content = chart.read_bytes()
        except OSError as error:
            self._reply(f":warning: the chart {esc(chart.name)} could not be read: {esc(error.strerror or str(error))}")
            return
        title = "Error rate and p95 latency: upgrade, stop, start, all-clear"
        self._slack.upload(self._channel, self._thread_ts, chart.name, content, title)

    def _reply(self, text: str) -> None:
        self._slack.post(self._channel, text, thread_ts=self._thread_ts)

    def _update_plan_message(self, run: RunView, note: str) -> None:
        message = closed_plan_message(run, note)
        channel, ts = self._plan_message["channel"], self._plan_message["ts"]
        self._outbox.send(
            lambda: self._slack.update(channel, ts, message),
            key=f"plan:{run.id}",
            lane=f"channel:{channel}",
            run_id=run.id,
        )


def _ts_in(where: dict[str, str] | None, channel: str) -> str | None:
    return where["ts"] if where and where.get("channel") == channel else None
