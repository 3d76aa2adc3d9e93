"""What the end of a rollback or an upgrade means beyond its run: known-bad versions, and the
rollback an upgrade that went wrong is offered at once.

- A rollback that succeeded left a bad version: that version is marked known-bad for its target,
  with the run and its reason, so nothing deploys it again before its root cause is known (the
  runbook: "Don't redeploy in panic"). So is an upgrade that failed and whose runner started the
  previous version again: it was rolled back too.
- An upgrade whose new version never became healthy is left running (the runner's rule after the
  drain-stop); one that is healthy but whose errors did not recover in the soak is no all-clear.
  Either way the way out is the rollback to the version before it, planned right away, with the
  brain restored from the pre-upgrade snapshot the upgrade itself took when the schema moved.
- A clear is a person's word that the cause is understood: it needs a reason, and is journaled.
"""

from __future__ import annotations

from bot.config import Config
from bot.errors import InvalidRequest
from bot.planning.plan import RollbackRequest
from bot.running.summary import RunSummary
from bot.tags import describe_invalid_tag, is_valid_tag
from storage import Journal, KnownBad, RunKind, RunStatus, RunView

MARKED_BY = "rollbot"


def mark_rolled_back(journal: Journal, run: RunView) -> KnownBad | None:
    """Mark the version `run` went back from as known-bad, when it did go back from one."""
    if not run.from_version or run.from_version == run.to_version:
        return None
    rolled_back = run.kind == RunKind.ROLLBACK and run.status is RunStatus.SUCCEEDED
    upgrade_undone = (
        run.kind == RunKind.UPGRADE
        and run.status is RunStatus.FAILED
        and (RunSummary.from_dict(run.summary).after_failure or "").startswith("started ")
    )
    if rolled_back:
        return journal.mark_known_bad(run.target, run.from_version, run.id, run.reason, MARKED_BY)
    if upgrade_undone:
        reason = f"the upgrade to it failed: {run.error}" if run.error else "the upgrade to it failed"
        return journal.mark_known_bad(run.target, run.to_version, run.id, reason, MARKED_BY)
    return None


def fallback_request(run: RunView) -> RollbackRequest | None:
    """The rollback an upgrade that went wrong is offered: back to the version before it, by the
    person who asked for the upgrade. None when the upgrade went well, or ended with the previous
    version running again (nothing to roll back)."""
    if run.kind != RunKind.UPGRADE or not run.from_version:
        return None
    summary = RunSummary.from_dict(run.summary)
    unhealthy = run.status is RunStatus.FAILED and summary.failed_step == "verify_health"
    persisting = run.status is RunStatus.SUCCEEDED and summary.errors_persist is not None
    if not (unhealthy or persisting):
        return None
    symptom = "errors persist after it" if persisting else "it failed its health check"
    return RollbackRequest(
        run.target,
        run.from_version,
        run.requester,
        f"the upgrade to {run.to_version} (run {run.id}): {symptom}",
        kind=RunKind.ROLLBACK,
    )


def clear_known_bad(
    config: Config, journal: Journal, target: str, version: str, actor: str, reason: str
) -> list[KnownBad]:
    """Clear `version` of `target` for deployment, with a reason; refused with why when there is
    nothing to clear or no reason was given."""
    if config.target(target) is None:
        known = ", ".join(sorted(config.targets)) or "none"
        raise InvalidRequest(f"unknown target {target!r}; configured targets: {known}")
    if not is_valid_tag(version):
        raise InvalidRequest(describe_invalid_tag(version))
    if not reason.strip():
        raise InvalidRequest(f"a clear needs a reason: what was the root cause of {version}, and why may it run again?")
    cleared = journal.clear_known_bad(target, version, actor, reason.strip())
    if not cleared:
        raise InvalidRequest(f"{version} of {target} is not known-bad; nothing to clear")
    return cleared
