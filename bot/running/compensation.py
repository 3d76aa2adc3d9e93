"""What a failed run does to leave the service standing: the compensation path.

Before the drain-stop the run's own changes are undone (the compose file, the staged copy), so the
service is exactly as it was. After it the run only moves forward, except to put back what a person
would otherwise have to: the original brain after a failed restore, and the version that ran
before when the target version left nothing running.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bot.adapters.compose import compose_command
from bot.brain.swap import discard_staged, put_back
from bot.files import write_atomically
from bot.planning.plan import StepKind
from bot.ports import DockerFacts
from bot.running.journal_writes import JournalWrites
from bot.running.outcome import BrainBack, Recovery, Started, describe_failure, describe_recovery
from bot.running.state import BEFORE_STOP, ProgressSink, RunState, backup_path, image_site
from storage import EventKind

log = logging.getLogger(__name__)


class Compensation:
    """Undo and recovery after a failed step; every side effect first checks the runner still holds the run."""

    def __init__(self, writes: JournalWrites, docker: DockerFacts, evidence_dir: Path) -> None:
        self._writes = writes
        self._docker = docker
        self._evidence_dir = evidence_dir

    def undo_before_stop(self, state: RunState, kind: StepKind) -> bool:
        """True when the failure leaves everything as it was, putting the compose file back if needed."""
        if kind not in BEFORE_STOP:
            return False
        self._writes.hold(state)
        if state.plan.brain is not None:
            discard_staged(state.plan.brain.path, state.run_id)
        if state.edit is None:
            return True
        try:
            write_atomically(state.edit.path, state.edit.before_text)
        except OSError as error:
            log.error("could not put %s back after run %s failed: %s", state.edit.path, state.run_id, error)
            return False
        return True

    def put_brain_back(self, state: RunState, kind: StepKind, notify: ProgressSink) -> BrainBack | None:
        """After the drain-stop a failed restore never ends with the snapshot in place: the
        Engine is stopped and the original brain goes back, so no data is left behind. None
        when no brain was swapped (the original never moved)."""
        brain = state.plan.brain
        if brain is None or kind in BEFORE_STOP:
            return None
        if state.swapped is None:
            discard_staged(brain.path, state.run_id)  # the swap never began: the staged copy was never used
            return None
        self._writes.hold(state)
        try:
            if kind is not StepKind.SWAP_BRAIN:
                state.compose.stop(state.target.service, state.target.drain_timeout)
            put_back(brain.path, state.swapped)
        except Exception as error:
            log.exception("putting the original brain back failed in run %s", state.run_id)
            self._writes.note(
                state,
                notify,
                EventKind.BRAIN_PUT_BACK_FAILED,
                {"brain": str(brain.path), "original": str(state.swapped.forensic_brain), "error": str(error)},
            )
            return BrainBack(
                False,
                f"the original brain could NOT be put back ({error}); it is at "
                f"{state.swapped.forensic_brain}: stop {state.target.service} and move it to "
                f"{brain.path} by hand",
            )
        discard_staged(brain.path, state.run_id)
        self._writes.note(
            state,
            notify,
            EventKind.BRAIN_PUT_BACK,
            {"brain": str(brain.path), "forensic_dir": str(state.swapped.forensic_dir)},
        )
        return BrainBack(
            True, f"the original brain is back at {brain.path}; the forensic folder is {state.swapped.forensic_dir}"
        )

    def back_to_previous(
        self, state: RunState, kind: StepKind, brain: BrainBack | None, notify: ProgressSink
    ) -> Recovery | None:
        """After a failure past the drain-stop, leave the Engine running if it ran before.

        The version that ran before the rollback (degraded, but serving) is started again when
        the target version did not start, or was stopped to put the original brain back: both
        leave nothing running, and the previous version runs on the original brain as it did
        before. A target version that started but is unhealthy is left running: the previous
        one was unhealthy too (that is why the rollback began), and swapping back would cost
        another stop for no better service. None keeps `describe_failure`'s account."""
        if kind in BEFORE_STOP or kind is StepKind.STOP or state.plan.container_id is None:
            return None  # the old version is still there, or nothing ran before the rollback
        if kind is StepKind.VERIFY_HEALTH and brain is None:
            return self._leave_running(state, notify)
        if state.plan.brain is not None and not state.plan.brain.path.is_file():
            return self._brain_missing(state, kind, notify)
        outcome = self._start_previous(state, notify)
        return describe_recovery(state, kind, brain, outcome)

    def _brain_missing(self, state: RunState, kind: StepKind, notify: ProgressSink) -> Recovery:
        """No brain file at all: starting the Engine would give it an empty memory, which is worse
        than leaving it stopped until a person finds the brain."""
        path, service = state.plan.brain.path if state.plan.brain else None, state.target.service
        self._writes.note(state, notify, EventKind.RECOVERY_NOT_STARTED, {"reason": f"{path} is missing"})
        where, _ = describe_failure(state.plan, state.target, kind, undone=False)
        where = (
            f"{where}; {path} is missing, so {state.plan.running_version} was not started again "
            "(it would run on an empty brain)"
        )
        compose = compose_command(state.target.compose_file, state.target.compose_files)
        return Recovery(
            where,
            f"find the brain and put it at {path}, then start {service} with `{compose}up -d {service}`",
            "not started: the brain is missing",
        )

    def _leave_running(self, state: RunState, notify: ProgressSink) -> Recovery:
        service, old, new = state.target.service, state.plan.running_version, state.plan.request.version
        self._writes.note(
            state,
            notify,
            EventKind.RECOVERY_LEFT_RUNNING,
            {"version": new, "reason": f"{old} was unhealthy too; stopping {new} would only add downtime"},
        )
        where = (
            f"{service} is now on {new} but unhealthy; it was left running: {old} was unhealthy too (the reason "
            f"for the rollback), and going back to it would stop {service} again for no better service"
        )
        if state.plan.upgrades:  # the rollback back is offered as a plan of its own, with its brain restore
            where = (
                f"{service} is now on {new} but unhealthy; it was left running for the rollback back to {old}, "
                f"which is planned separately (a brain restore, when {new} migrated the brain, needs its approval)"
            )
        _, next_action = describe_failure(state.plan, state.target, StepKind.VERIFY_HEALTH, undone=False)
        return Recovery(where, next_action, f"left {new} running")

    def _start_previous(self, state: RunState, notify: ProgressSink) -> Started:
        """Put the edited file (compose file, override or .env) back as it was before the run and
        `up -d` the previous version."""
        run_id, service, old = state.run_id, state.target.service, state.plan.running_version
        before = self._text_before(state)
        edited = state.edit.path if state.edit is not None else image_site(state).path
        if before is None:
            return Started(False, False, f"{edited} as it was before the run is not known")
        self._writes.hold(state)
        try:
            write_atomically(edited, before)
        except OSError as error:
            self._writes.note(state, notify, EventKind.RECOVERY_COMPOSE_PUT_BACK_FAILED, {"error": str(error)})
            return Started(
                False,
                False,
                f"the compose file could not be put back to {old} ({error}); "
                f"its copy from before the run is {backup_path(self._evidence_dir, state)}",
            )
        self._writes.note(
            state, notify, EventKind.RECOVERY_COMPOSE_PUT_BACK, {"compose_file": str(edited), "version": old}
        )
        try:
            state.compose.up(service)
        except Exception as error:  # noqa: BLE001 - journaled and said in the failure message
            log.warning("starting %s %s again after run %s failed: %s", service, old, run_id, error)
            self._writes.note(
                state, notify, EventKind.RECOVERY_PREVIOUS_START_FAILED, {"version": old, "error": str(error)}
            )
            return Started(True, False, str(error))
        running = self._service_running(state)
        self._writes.note(state, notify, EventKind.RECOVERY_PREVIOUS_STARTED, {"version": old, "running": running})
        return Started(True, running, None if running else f"`up -d` returned but no {service} container is running")

    def _text_before(self, state: RunState) -> str | None:
        if state.edit is not None:
            return state.edit.before_text
        backup = backup_path(self._evidence_dir, state)
        return backup.read_text(encoding="utf-8") if backup.is_file() else None

    def _service_running(self, state: RunState) -> bool:
        """Whether the service has a running container now, as the daemon says; False when it cannot tell."""
        try:
            container_id = state.compose.container_id(state.target.service)
            facts = self._docker.container(container_id) if container_id else None
        except Exception:  # noqa: BLE001 - an unanswered question is "not known to run"
            log.warning("cannot tell whether %s runs after run %s", state.target.service, state.run_id)
            return False
        return facts is not None and facts.running
