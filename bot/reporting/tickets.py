"""Postmortem tickets: where they go (files here, Jira in jira_tickets) and the desk that makes
sure each run gets exactly one, even when Jira is down, answers 429, or a create's answer is lost.

The desk works from the persisted outbox (`storage.tickets`) and does not trust search to avoid
a duplicate (Jira's index lags; Cloud's legacy search is gone). The key is stored the moment a
create answers; attachments follow as a separate step that a later attempt resumes. Only when a
create went out and no answer came back does the desk search by the run's label, once the
search index has had time to see the issue, and again before any second create. A failed
attempt is retried with backoff (honouring `Retry-After`), across restarts. A ticket never fails
a rollback: the desk is called after the run has ended and swallows what it cannot do.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.files import write_atomically
from bot.ports import Postmortem, Ticket, TicketSink
from bot.redaction import redact_shapes
from bot.reporting.attachments import DEFAULT_ATTACHMENT_CAP_BYTES
from bot.reporting.evidence import gather
from bot.reporting.postmortem import build, redacted, to_markdown
from storage import RunView
from storage.tickets import TicketOutbox

log = logging.getLogger(__name__)
FIRST_RETRY_SECONDS = 5
LONGEST_RETRY_SECONDS = 600


class FileTickets:
    """The embedded default: `<directory>/<run>/postmortem.md` and the attachments beside it."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def find(self, postmortem: Postmortem) -> Ticket | None:
        document = self._directory / postmortem.run_id / "postmortem.md"
        return Ticket(str(document), document.resolve().as_uri()) if document.is_file() else None

    def create(self, postmortem: Postmortem) -> Ticket:
        folder = self._directory / postmortem.run_id
        folder.mkdir(parents=True, exist_ok=True)
        self.complete(Ticket(str(folder), None), postmortem)
        document = folder / "postmortem.md"
        write_atomically(document, to_markdown(postmortem))  # last: its presence means "done"
        return Ticket(str(document), document.resolve().as_uri())

    def complete(self, ticket: Ticket, postmortem: Postmortem) -> None:
        folder = self._directory / postmortem.run_id
        for attachment in postmortem.attachments:
            if not (folder / attachment.name).exists():
                shutil.copyfile(attachment, folder / attachment.name)


class TicketDesk:
    def __init__(
        self,
        outbox: TicketOutbox,
        sink: TicketSink,
        read_run: Callable[[str], RunView],
        evidence_dir: Path,
        redact: Callable[[str], str] = redact_shapes,
        attachment_cap_bytes: int = DEFAULT_ATTACHMENT_CAP_BYTES,
        search_delay: timedelta = timedelta(0),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._outbox = outbox
        self._sink = sink
        self._read_run = read_run
        self._evidence_dir = evidence_dir
        self._redact = redact
        self._attachment_cap_bytes = attachment_cap_bytes
        self._search_delay = search_delay
        self._now = clock
        self._listeners: list[Callable[[RunView, Ticket], None]] = []

    @property
    def outbox(self) -> TicketOutbox:
        return self._outbox

    def on_created(self, listener: Callable[[RunView, Ticket], None]) -> None:
        self._listeners.append(listener)

    def problems(self) -> list[str]:
        """What is wrong with the ticket configuration (a Jira project, issue type or label that
        cannot work), one line each; asked at start so the YAML is fixed before a rollback."""
        check: Callable[[], list[str]] | None = getattr(self._sink, "problems", None)
        if check is None:
            return []
        try:
            return check()
        except Exception as error:  # noqa: BLE001 - Jira may be down at start; the outbox retries anyway
            return [f"tickets: the Jira configuration could not be checked ({_describe(error)})"]

    def owe(self, run_id: str) -> None:
        self._outbox.owe(run_id)

    def process(self, force: bool = False) -> dict[str, Ticket | str]:
        """Try every due ticket once; returns the ticket or the error per run id."""
        results: dict[str, Ticket | str] = {}
        for run_id in self._outbox.claim_due(force=force):
            results[run_id] = self._attempt(run_id)
        return results

    def _ticket_for(self, run_id: str, postmortem: Postmortem) -> Ticket:
        """The run's ticket: the stored key, else (a create went out unanswered) one found by
        label, else a new one, whose key is stored before anything else happens."""
        view = self._outbox.get(run_id)
        if view is not None and view.key:
            return Ticket(view.key, view.url)
        if view is not None and view.create_sent_at is not None:
            waited = self._now() - view.create_sent_at
            if waited < self._search_delay:
                raise _IndexNotReady(self._search_delay - waited)
            found = self._sink.find(postmortem)
            if found is not None:
                return self._keyed(run_id, found)
            if waited < 2 * self._search_delay:  # looked once; look again, later, before a second create
                raise _IndexNotReady(2 * self._search_delay - waited)
        self._outbox.create_sent(run_id)
        try:
            created = self._sink.create(postmortem)
        except Exception as error:
            if _answered_or_never_sent(error):
                self._outbox.create_unsent(run_id)  # no issue can exist: the next attempt creates at once
            raise
        return self._keyed(run_id, created)

    def _keyed(self, run_id: str, ticket: Ticket) -> Ticket:
        """Store the key, then tell the listeners (the Slack thread links the ticket even while
        an attachment is still to come)."""
        self._outbox.keyed(run_id, ticket.key, ticket.url)
        run = self._read_run(run_id)
        for listener in self._listeners:
            try:
                listener(run, ticket)
            except Exception:
                log.exception("a ticket listener failed for run %s", run_id)
        return ticket

    def _attempt(self, run_id: str) -> Ticket | str:
        run = self._read_run(run_id)
        try:
            attachments = gather(run, self._evidence_dir, self._redact, self._attachment_cap_bytes)
            postmortem = redacted(build(run, attachments), self._redact)
            ticket = self._ticket_for(run_id, postmortem)
            self._sink.complete(ticket, postmortem)
        except Exception as error:  # noqa: BLE001 - a ticket never fails a rollback; it is retried
            view = self._outbox.get(run_id)
            retry_in = (
                error.retry_in if isinstance(error, _IndexNotReady) else _retry_in(view.attempts if view else 0, error)
            )
            message = _describe(error)
            log.warning("postmortem ticket for run %s not created (%s); retrying in %s", run_id, message, retry_in)
            self._outbox.failed(run_id, message, retry_in)
            return message
        self._outbox.created(run_id, ticket.key, ticket.url)
        return ticket


class _IndexNotReady(Exception):
    """A create's answer was lost and the search index may not show its issue yet: wait, then look."""

    def __init__(self, retry_in: timedelta) -> None:
        super().__init__(f"a create's answer was lost; searching by label after the index delay ({retry_in})")
        self.retry_in = retry_in


def _answered_or_never_sent(error: BaseException) -> bool:
    """Whether a failed create certainly made no issue: Jira refused it (a 4xx: it checked the
    request and made nothing), or no connection was ever made. A timeout, a connection dropped
    mid-request and a 5xx (Jira failing after the insert, or a proxy's 502/504 for an answer it
    lost) are the lost answer that only a search can settle."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status < 500
    text = f"{error!r} {error.__cause__!r} {error.__context__!r}"
    return any(
        sign in text
        for sign in (
            "NewConnectionError",
            "Connection refused",
            "ConnectionRefusedError",
            "Name or service not known",
            "NameResolutionError",
        )
    )


def _retry_in(attempts: int, error: Exception) -> timedelta:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
    if retry_after and str(retry_after).isdigit():
        return timedelta(seconds=int(retry_after))
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2**attempts, LONGEST_RETRY_SECONDS))


def _describe(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    text = getattr(error, "text", None) or str(error) or type(error).__name__
    first = str(text).strip().splitlines()[0] if str(text).strip() else type(error).__name__
    return f"HTTP {status}: {first}"[:300] if status else f"{type(error).__name__}: {first}"[:300]
