"""The one exception tree of rollbot, and the one reporter of everything outside it.

    RollbotError                 a failure a person can act on; its message says what and what next
    ├── ConfigError              the configuration file or environment is wrong
    ├── InvalidRequest           the request itself is malformed (unknown target, bad version)
    │   └── ParseError           (handlers/parsing) the text of `/rollback …` is not a command
    ├── OutsideSystemError       Docker, Compose, the registry or the health endpoint misbehaved
    │   ├── ComposeError         a `docker compose` process failed or timed out
    │   ├── DockerError          the Docker daemon refused, could not be reached or did not answer
    │   ├── MetricsError         Prometheus could not be reached or refused a query
    │   ├── AttachmentsMissing   (bot/reporting/jira_tickets) a ticket exists; some attachments did not land
    │   └── MembershipUnknown    (handlers/directory) a Slack user group's members were never read
    ├── ComposeFileError         the compose file cannot be read or edited safely
    ├── BrainError               (bot/brain/facts) the brain or a snapshot cannot be read, staged or swapped
    │   └── BrainBusy            (bot/brain/snapshots) a snapshot or a restore holds the brain's lock
    ├── Refused                  (bot/planning/preflight) a preflight check failed; the plan records which
    ├── StepFailed               (bot/running/state) a step could not do its work; the journal says why
    ├── DrillFailed              (bot/core/drill) a drill phase did not go as the drill needs
    └── JournalError             the journal refused a move, or cannot be written
        ├── IllegalMove          (storage/runstate) the table of moves forbids it from the run's status
        │   └── NotStartable     (storage/repository) a run could not be claimed: not planned, or target held
        ├── LostRun              (storage/runstate) another process took the run over; this one must stop
        └── JournalDown          (bot/running/journal_writes) the journal cannot take a write the run needs

The classes marked with a module live there, beside the code that raises them; they subclass
these roots. Callers catch at the level they care about: front ends catch `RollbotError` and
show its message as one line. Anything else is a bug: `report_unexpected` gives it an error id,
logs the trace under that id, and returns the one line the person sees (terminal, Slack
listener, HTTP server alike). Messages never carry secrets: callers build them from names and
versions, not from settings.
"""

from __future__ import annotations

import logging
import secrets

log = logging.getLogger("rollbot.errors")


class RollbotError(Exception):
    """Base of every failure rollbot knows how to explain."""


class ConfigError(RollbotError):
    """The configuration is missing or wrong; the message names the file, the key and the fix."""


class InvalidRequest(RollbotError):
    """A request that no plan can be made for."""


class OutsideSystemError(RollbotError):
    """An outside system (Docker, Compose, a registry, HTTP) failed."""


class ComposeError(OutsideSystemError):
    """A `docker compose` process exited non-zero or timed out."""


class DockerError(OutsideSystemError):
    """The Docker daemon could not answer a question about containers or images."""


class MetricsError(OutsideSystemError):
    """Prometheus could not be reached or could not answer a query; the message names which."""


class ComposeFileError(RollbotError):
    """The compose file is unreadable, does not name the service, or cannot be edited in place."""


class JournalError(RollbotError):
    """The journal (storage) refused a write: the run is not where the caller thought it was."""


def report_unexpected(error: BaseException, while_doing: str) -> str:
    """Log an error that is not a `RollbotError` with its trace under a fresh error id, and
    return the one line a person is shown instead: the id lets whoever reads the log find the
    trace, and the person never sees a traceback."""
    error_id = secrets.token_hex(4)
    log.error("unexpected error %s while %s", error_id, while_doing, exc_info=error)
    return f"rollbot hit an unexpected error (id {error_id}); it is logged under that id."
