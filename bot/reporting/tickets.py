"""Postmortem tickets: where they go (files or Jira) and the desk that makes sure each run gets
exactly one, even when Jira is down, answers 429, or a create's answer is lost.

The desk works from the persisted outbox (`storage.tickets`): a finished run is owed a ticket;
each attempt first asks the sink for a ticket labelled with the run id and creates one only if
there is none, so a create whose answer was lost is found, not repeated. A failed attempt is
retried later with backoff (honouring `Retry-After`), across restarts. A ticket never fails a
rollback: the desk is called after the run has ended and swallows what it cannot do.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.files import write_atomically
from bot.ports import Postmortem, Ticket, TicketSink
from bot.reporting.evidence import gather
from bot.reporting.postmortem import build, to_jira_wiki, to_markdown
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


class JiraTickets:
    """Jira through the python `jira` library (REST v2, wiki markup)."""

    def __init__(
        self,
        connect: Callable[[], Any],
        server: str,
        project: str,
        issue_type: str,
        labels: tuple[str, ...] = (),
        fields: dict[str, Any] | None = None,
    ) -> None:
        self._connect = connect
        self._server = server.rstrip("/")
        self._project = project
        self._issue_type = issue_type
        self._labels = labels
        self._fields = fields or {}

    def find(self, postmortem: Postmortem) -> Ticket | None:
        # validate_query as the string "true": the published spec's enum is lower case, and
        # both Cloud ("strict") and Data Center (a boolean) accept it.
        found = self._connect().search_issues(f'labels = "{postmortem.label}"', maxResults=1, validate_query="true")
        return self._ticket(found[0].key) if found else None

    def create(self, postmortem: Postmortem) -> Ticket:
        issue = self._connect().create_issue(
            fields={
                "project": {"key": self._project},
                "issuetype": {"name": self._issue_type},
                "summary": postmortem.title[:250],
                "description": to_jira_wiki(postmortem),
                "labels": [postmortem.label, *self._labels],
                **self._fields,
            }
        )
        return self._ticket(issue.key)

    def complete(self, ticket: Ticket, postmortem: Postmortem) -> None:
        """Attach what is not attached yet (a retry after a half-done attempt adds the rest)."""
        jira = self._connect()
        issue = jira.issue(ticket.key)
        present = {attachment.filename for attachment in getattr(issue.fields, "attachment", None) or []}
        for path in postmortem.attachments:
            if path.name not in present:
                with path.open("rb") as handle:
                    jira.add_attachment(issue=ticket.key, attachment=handle, filename=path.name)

    def _ticket(self, key: str) -> Ticket:
        return Ticket(key, f"{self._server}/browse/{key}")


class TicketDesk:
    def __init__(
        self,
        outbox: TicketOutbox,
        sink: TicketSink,
        read_run: Callable[[str], RunView],
        evidence_dir: Path,
    ) -> None:
        self._outbox = outbox
        self._sink = sink
        self._read_run = read_run
        self._evidence_dir = evidence_dir
        self._listeners: list[Callable[[RunView, Ticket], None]] = []

    @property
    def outbox(self) -> TicketOutbox:
        return self._outbox

    def on_created(self, listener: Callable[[RunView, Ticket], None]) -> None:
        self._listeners.append(listener)

    def owe(self, run_id: str) -> None:
        self._outbox.owe(run_id)

    def process(self, force: bool = False) -> dict[str, Ticket | str]:
        """Try every due ticket once; returns the ticket or the error per run id."""
        results: dict[str, Ticket | str] = {}
        for run_id in self._outbox.claim_due(force=force):
            results[run_id] = self._attempt(run_id)
        return results

    def _attempt(self, run_id: str) -> Ticket | str:
        run = self._read_run(run_id)
        try:
            postmortem = build(run, gather(run, self._evidence_dir))
            ticket = self._sink.find(postmortem) or self._sink.create(postmortem)
            self._sink.complete(ticket, postmortem)
        except Exception as error:  # noqa: BLE001 - a ticket never fails a rollback; it is retried
            view = self._outbox.get(run_id)
            retry_in = _retry_in(view.attempts if view else 0, error)
            message = _describe(error)
            log.warning("postmortem ticket for run %s not created (%s); retrying in %s", run_id, message, retry_in)
            self._outbox.failed(run_id, message, retry_in)
            return message
        self._outbox.created(run_id, ticket.key, ticket.url)
        for listener in self._listeners:
            try:
                listener(run, ticket)
            except Exception:
                log.exception("a ticket listener failed for run %s", run_id)
        return ticket


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
