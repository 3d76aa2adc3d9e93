"""What the listeners need, put into Bolt's `context` by one middleware (no globals)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVarTuple, Unpack

from bot.config import Config
from bot.core.outcomes import PlannedRun
from bot.core.rollbot import Rollbot
from bot.errors import RollbotError, report_unexpected
from bot.ports import Ticket
from handlers.blocks import Message, esc, ticket_link
from handlers.directory import SlackDirectory
from handlers.outbox import Outbox, Undelivered
from handlers.plan_blocks import approver_call, expired_plan_message, plan_message
from handlers.poster import SlackPoster
from handlers.progress import SlackProgress
from storage import RunStatus, RunView

log = logging.getLogger(__name__)
Args = TypeVarTuple("Args")


def unresolved_notice(target: str, entry: str, problem: str) -> str:
    """What the channel reading progress in the wrong place is told, and how to fix it."""
    return (
        f":warning: The incident channel of *{esc(target)}* (`incident_channel: {esc(entry)}`) could not be used: "
        f"{esc(problem)}. Progress is posted here instead. Fix `incident_channel` in rollbot's YAML "
        "(an id like `C0123ABCD`, or `#name` of a channel rollbot is in)."
    )


def usergroups_in(config: Config) -> set[str]:
    """The user groups (S…) named as requesters or approvers of any target."""
    return {
        entry
        for target in config.targets.values()
        for entry in (*target.requesters, *target.approvers)
        if entry.startswith("S")
    }


@dataclass(frozen=True)
class Services:
    rollbot: Rollbot
    poster: SlackPoster
    outbox: Outbox
    directory: SlackDirectory

    def watch_usergroups(self) -> threading.Event:
        """Read every user group the configuration names now (a cold start serves nothing before
        this), then keep them fresh in the background; set the event to stop."""
        groups = usergroups_in(self.rollbot.config)
        self.directory.refresh_groups(groups)
        return self.directory.keep_refreshing(groups)

    def plan_message(self, planned: PlannedRun) -> Message:
        """The plan as Slack shows it, calling the target's approvers when it needs one."""
        target = self.rollbot.config.target(planned.run.target)
        return plan_message(planned.plan, planned.run, target.approvers if target else ())

    def post_plan(self, planned: PlannedRun, channel: str, tell_requester: Undelivered | None = None) -> None:
        """Post a plan in `channel` (after whatever is queued there), remember where, and watch it.
        When Slack will not take it there (`not_in_channel`, a DM), the requester is told how, by
        `tell_requester` (the command's response_url, which works where rollbot cannot post) or
        else an ephemeral."""
        message = self.plan_message(planned)
        requester = planned.run.requester

        def undelivered(error: str) -> None:
            text = (
                f":warning: rollbot could not post the plan of run `{planned.run.id}` in this channel "
                f"(Slack answered `{esc(error)}`). Invite @rollbot here, or ask in a channel it is in."
            )
            if tell_requester is not None:
                tell_requester(text)
            else:
                self.tell(channel, requester, text)

        def post() -> None:
            posted = self.poster.post(channel, message)
            where = {"channel": posted.channel, "ts": posted.ts}
            self.rollbot.remember(planned.run.id, plan_message=where)
            self.watch_plan(planned, where)

        self.outbox.send(post, lane=f"channel:{channel}", run_id=planned.run.id, if_undelivered=undelivered)

    def watch_plan(self, planned: PlannedRun, where: dict[str, str]) -> None:
        """A plan left alone is acted on by time: its approvers are called again in its thread
        after `approval_reminder_minutes`, and it is edited in place to "expired — plan again"
        once `plan_ttl_minutes` have passed, unless someone decided it before."""
        if not (planned.plan.approvable or planned.plan.question):
            return
        config, run_id = self.rollbot.config, planned.run.id
        target = config.target(planned.run.target)
        if planned.plan.restores_brain and target is not None and target.approvers:
            call = approver_call(target.approvers)
            self._later(config.approval_reminder_minutes * 60, self._remind, run_id, where, call)
        self._later(config.plan_ttl_minutes * 60 + 0.5, self._expire, run_id, where)

    def _remind(self, run_id: str, where: dict[str, str], call: str) -> None:
        if self.rollbot.run(run_id).status is not RunStatus.PLANNED:
            return
        self.outbox.send(
            lambda: self.poster.post(where["channel"], f"{call} Still waiting.", thread_ts=where["ts"]),
            lane=f"channel:{where['channel']}",
            run_id=run_id,
        )

    def _expire(self, run_id: str, where: dict[str, str]) -> None:
        if not self.rollbot.expire(run_id):
            return
        message = expired_plan_message(self.rollbot.run(run_id), self.rollbot.config.plan_ttl_minutes)
        self.outbox.send(lambda: self.poster.update(where["channel"], where["ts"], message), key=f"plan:{run_id}")

    def _later(self, seconds: float, work: Callable[..., None], *args: object) -> None:
        """Run `work(*args)` in `seconds` on a daemon timer; a failure is logged, never raised."""

        def run() -> None:
            try:
                work(*args)
            except Exception as error:  # noqa: BLE001 - a reminder must never take the bot down
                report_unexpected(error, f"running a timed {getattr(work, '__name__', 'task')}")

        timer = threading.Timer(seconds, run)
        timer.daemon = True
        timer.start()

    def ticket_link(self, run_id: str) -> str | None:
        desk = self.rollbot.tickets
        owed = desk.outbox.get(run_id) if desk else None
        return ticket_link(owed.key, owed.url) if owed and owed.key else None

    def link_ticket_later(self, run: RunView, ticket: Ticket) -> None:
        """A ticket filed after the all-clear went out gets a thread reply; one already linked
        in the all-clear does not. Queued behind the all-clear, so the order decides, not luck."""

        def reply() -> None:
            context = self.rollbot.run(run.id).context
            thread = context.get("announcement")
            if not thread or context.get("final_linked_ticket"):
                return
            self.poster.post(
                thread["channel"],
                f":memo: Postmortem ticket: {ticket_link(ticket.key, ticket.url)}",
                thread_ts=thread["ts"],
            )

        self.outbox.send(reply, lane=f"target:{run.target}", run_id=run.id)

    def progress_for(self, channel: str) -> Callable[[RunView], SlackProgress]:
        """The progress sink of a run started or taken up from `channel`: it reports in the
        target's incident channel (by id, resolved from a name if need be), or in `channel` when
        the target names none or names one Slack cannot find, saying so there."""
        rollbot = self.rollbot

        def progress(run: RunView) -> SlackProgress:
            incident, notice = self.incident_channel(run.target, channel)
            return SlackProgress(
                self.poster,
                self.outbox,
                rollbot.run,
                run,
                incident,
                ticket_link=self.ticket_link,
                remember=rollbot.remember,
                fallback=channel,
                notice=notice,
            )

        return progress

    def terminal_progress(self, run: RunView) -> SlackProgress | None:
        """The Slack progress sink of a run started at the terminal: its target's incident channel,
        like a run started in Slack; None when the target names none or it cannot be found (the
        terminal says where the run is anyway)."""
        channel, notice = self.incident_channel(run.target, "")
        if not channel or notice:
            return None
        rollbot = self.rollbot
        return SlackProgress(
            self.poster, self.outbox, rollbot.run, run, channel, ticket_link=self.ticket_link, remember=rollbot.remember
        )

    def incident_channel(self, target_name: str, fallback: str) -> tuple[str, str | None]:
        """The id of the channel a run of `target_name` reports in, and a notice when that is
        `fallback` because the configured `incident_channel` did not resolve. Called after the
        ack: resolving a name may call conversations.list."""
        target = self.rollbot.config.target(target_name)
        entry = target.incident_channel if target else None
        if not entry:
            return fallback, None
        found = self.directory.channel(entry)
        if found.id:
            return found.id, None
        log.warning("incident_channel %r of %s did not resolve: %s", entry, target_name, found.problem)
        return fallback, unresolved_notice(target_name, entry, found.problem or "it was not found")

    def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral message: refusals and errors go only to the person who clicked or typed."""
        self.outbox.send(lambda: self.poster.ephemeral(channel, user, text), lane=f"user:{user}")

    def guarded(
        self, channel: str, user: str, work: Callable[[Services, Unpack[Args]], None], *args: *Args, runs: bool = False
    ) -> None:
        """Run `work(self, *args)` after the ack; a failure reaches the person as one line, never a
        traceback. Typed by its arguments, so a listener that hands `work` the wrong ones fails
        mypy rather than a click in an incident."""

        def run() -> None:
            try:
                work(self, *args)
            except RollbotError as error:
                self.tell(channel, user, f":no_entry: {esc(str(error))}")
            except Exception as error:  # noqa: BLE001 - the one error sink for work after the ack
                self.tell(channel, user, f":warning: {report_unexpected(error, 'doing work after a Slack ack')}")

        self.rollbot.background(run, runs=runs)
