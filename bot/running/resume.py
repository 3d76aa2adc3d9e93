"""Taking up an interrupted run: reclaiming it, and reading back from the journal what it had done.

A resume or an abort starts from a fresh `RunState`; everything the interrupted runner knew in
memory (the edit it made, the staged copy, the swap, when the stop began) is rebuilt here from the
journal and the files it names, so compensation and the summary treat both runners' work as one.
"""

from __future__ import annotations

from pathlib import Path

from bot.adapters.compose_file import ComposeEdit, image_in
from bot.brain.swap import Staged, Swapped, staged_path
from bot.planning.plan import StepKind
from bot.running.fingerprints import changes_since
from bot.running.state import DONE, ProgressSink, RunState, backup_path, image_site
from storage import EventKind, Journal, Lease, NotStartable, RunView, StepStatus


def take_up(
    journal: Journal,
    state: RunState,
    run: RunView,
    kind: EventKind,
    actor: str,
    owner: str,
    by: str,
    notify: ProgressSink,
) -> None:
    """Reclaim an interrupted run, but only while the files it left are as it left them: a
    resume or abort acting on a compose file or brain someone changed since would overwrite
    their work (a later run's version, a brain restored by hand). `NotStartable` names what changed."""
    changed = changes_since(run)
    if changed:
        raise NotStartable(
            f"run {run.id} is not {'resumed' if kind is EventKind.RUN_RESUMED else 'aborted'}: "
            f"{'; '.join(changed)} since it was interrupted. Check the service, then put them "
            "back or close the run by hand; nothing was done"
        )
    claimed = journal.reclaim(run.id, actor, owner, kind, {"by": by, "step": run.current_step})
    state.lease = Lease.of(claimed.details)
    notify(claimed)


def read_back(state: RunState, run: RunView, evidence_dir: Path) -> None:
    """What the run did before it was interrupted, from the journal and the files it names."""
    steps = {StepKind(step.name): step for step in run.steps}
    state.began_at = run.started_at
    logs = steps.get(StepKind.CAPTURE_LOGS)
    if logs is not None and logs.detail.get("log_file"):
        state.log_file = Path(logs.detail["log_file"])
    stop = steps.get(StepKind.STOP)
    if stop is not None and stop.started_at is not None:
        state.past_stop = True
        state.stop_started_at = stop.started_at
        verified = steps.get(StepKind.VERIFY_HEALTH)
        if verified is not None and verified.status is StepStatus.SUCCEEDED and verified.finished_at:
            state.downtime = (verified.finished_at - stop.started_at).total_seconds()
    brain = state.plan.brain
    if brain is not None and brain.snapshot is not None and StepKind.STAGE_SNAPSHOT in steps:
        state.staged, state.swapped = _read_back_brain(run, brain.path, brain.snapshot.path)
    edit = steps.get(StepKind.SET_IMAGE_TAG)
    if edit is not None and edit.status is not StepStatus.PENDING:
        state.edit = _read_back_edit(state, evidence_dir)


def step_reached(run: RunView) -> StepKind:
    """The step an interrupted run was in, or the next it would have taken."""
    for step in run.steps:
        if step.status not in DONE:
            return StepKind(step.name)
    return StepKind(run.steps[-1].name)


def _read_back_edit(state: RunState, evidence_dir: Path) -> ComposeEdit | None:
    backup = backup_path(evidence_dir, state)
    if not backup.is_file():
        return None  # the step never got as far as touching the compose file
    site = image_site(state)
    before = backup.read_text(encoding="utf-8")
    old = image_in(site, before, state.target.service)
    return ComposeEdit(site.path, before, site.path.read_text(encoding="utf-8"), old, state.plan.target_image or old)


def _read_back_brain(run: RunView, brain: Path, snapshot: Path) -> tuple[Staged | None, Swapped | None]:
    """The staged copy and the swap of a run that was interrupted, as the journal recorded them.
    The staged file's inode is read from the file while it exists, and from the swap's note once
    the swap has renamed it into place."""
    staging = next((s for s in run.steps if s.name == StepKind.STAGE_SNAPSHOT), None)
    note = next((e.details for e in reversed(run.events) if e.kind == EventKind.BRAIN_SWAP), None)
    staged = None
    if staging is not None and staging.status is StepStatus.SUCCEEDED:
        path = staged_path(brain, run.id)
        inode = path.stat().st_ino if path.exists() else (note or {}).get("staged_inode", -1)
        staged = Staged(path, inode, staging.detail.get("checksum", ""), snapshot)
    if note is None:
        return staged, None
    forensic = Path(note["forensic_dir"])
    swapped = Swapped(forensic, forensic / brain.name, note["original_inode"], note["staged_inode"], ())
    return staged, swapped
