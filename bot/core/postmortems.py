"""Every run that ended is owed a postmortem ticket; filing one never fails the run itself."""

from __future__ import annotations

import logging

from bot.reporting.tickets import TicketDesk
from storage import Journal, RunStatus

log = logging.getLogger(__name__)


class Postmortems:
    def __init__(self, journal: Journal, tickets: TicketDesk | None) -> None:
        self._journal = journal
        self._tickets = tickets

    def file_if_over(self, run_id: str) -> None:
        """An interrupted run is not over: it is resumed or aborted, and then it is owed one."""
        try:
            status = self._journal.run(run_id).status
        except Exception:
            log.exception("cannot read run %s back from the journal; its postmortem waits", run_id)
            return
        if status.is_final and status is not RunStatus.INTERRUPTED:
            self.file(run_id)

    def file(self, run_id: str) -> None:
        """A run that ended is owed a postmortem; one attempt now, the outbox retries the rest."""
        if self._tickets is None:
            return
        try:
            self._tickets.owe(run_id)
            self._tickets.process()
        except Exception:
            log.exception("filing the postmortem of run %s failed; it stays in the outbox", run_id)
