"""Every rollback that ended is owed a postmortem ticket; filing one never fails the run itself.

The end of a run is also where a version rolled back from becomes known-bad (bot/core/upgrades.py).
An upgrade is owed no postmortem: one that went wrong is followed by its rollback, which files one.
"""

from __future__ import annotations

import logging

from bot.core.upgrades import mark_rolled_back
from bot.reporting.tickets import TicketDesk
from storage import Journal, RunKind, RunStatus

log = logging.getLogger(__name__)


class Postmortems:
    def __init__(self, journal: Journal, tickets: TicketDesk | None) -> None:
        self._journal = journal
        self._tickets = tickets

    def file_if_over(self, run_id: str) -> None:
        """An interrupted run is not over: it is resumed or aborted, and then it is owed one."""
        try:
            run = self._journal.run(run_id)
        except Exception:
            log.exception("cannot read run %s back from the journal; its postmortem waits", run_id)
            return
        if not run.status.is_final or run.status is RunStatus.INTERRUPTED:
            return
        try:
            mark_rolled_back(self._journal, run)
        except Exception:
            log.exception("could not mark the version run %s left as known-bad", run_id)
        if run.kind != RunKind.UPGRADE:
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
