"""The step bodies: the work of each step of the runbook, through the outside systems' interfaces.

Each returns the detail the journal records when the step ends, and each is written to be
harmless when its work was already done, since a resumed run runs the step that was in flight again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.adapters.compose_file import image_in, set_tag
from bot.brain.holders import describe_holders, holders_after_stop
from bot.brain.snapshots import brain_lock, take_snapshot
from bot.brain.swap import brain_in_place, forensic_dir, prepare_swap, stage, swap
from bot.config import TargetConfig
from bot.files import write_atomically
from bot.planning.plan import StepKind
from bot.ports import DockerFacts, Health, Metrics
from bot.reporting.evidence import redacted_inspect, run_folder
from bot.running.journal_writes import JournalWrites
from bot.running.soak import Soak
from bot.running.state import RunState, StepFailed, backup_path, image_site
from bot.running.window_capture import WindowCapture
from storage import EventKind

StepBody = Callable[[RunState], dict[str, Any]]


class StepBodies:
    """One method per `StepKind`; the runner around them journals, times and compensates."""

    def __init__(
        self,
        writes: JournalWrites,
        docker: DockerFacts,
        health: Health,
        evidence_dir: Path,
        clock: Callable[[], float],
        on_healthy: Callable[[TargetConfig, str], None],
        metrics: Metrics | None = None,
    ) -> None:
        self._soak = Soak(health, metrics)
        self._window = WindowCapture(metrics, evidence_dir)
        self._writes = writes
        self._docker = docker
        self._health = health
        self._evidence_dir = evidence_dir
        self._clock = clock
        self._on_healthy = on_healthy  # the version is healthy on the brain now: worth remembering

    def do(self, kind: StepKind, state: RunState) -> dict[str, Any]:
        bodies: dict[StepKind, StepBody] = {
            StepKind.CAPTURE_LOGS: self._capture_logs,
            StepKind.STAGE_SNAPSHOT: self._stage_snapshot,
            StepKind.SWAP_BRAIN: self._swap_brain,
            StepKind.SET_IMAGE_TAG: self._set_image_tag,
            StepKind.PULL: self._pull,
            StepKind.SNAPSHOT_BRAIN: self._snapshot_brain,
            StepKind.STOP: self._stop,
            StepKind.START: self._start,
            StepKind.VERIFY_HEALTH: self._verify_health,
        }
        return bodies[kind](state)

    def _capture_logs(self, state: RunState) -> dict[str, Any]:
        assert state.plan.container_id is not None
        version = state.plan.running_version or "unknown"
        destination = run_folder(self._evidence_dir, state.run_id) / f"{state.target.service}-{version}.log"
        containers = state.plan.container_ids or (state.plan.container_id,)
        size = self._docker.save_logs(containers, destination, state.target.log_cap_bytes)
        state.log_file = destination
        inspected = destination.with_name(f"{state.target.service}-{version}.inspect.json")
        attrs = redacted_inspect(self._docker.inspect(state.plan.container_id))
        inspected.write_text(json.dumps(attrs, indent=2, default=str))
        return {
            "log_file": str(destination),
            "bytes": size,
            "inspect_file": str(inspected),
            "containers": len(containers),
            "cap_bytes": state.target.log_cap_bytes,
            **self._window.before_stop(state),
        }

    def _stage_snapshot(self, state: RunState) -> dict[str, Any]:
        brain = state.plan.brain
        assert brain is not None and brain.snapshot is not None
        began = self._clock()
        state.staged = stage(brain.snapshot, brain.path, state.run_id)
        return {
            "snapshot": str(brain.snapshot.path),
            "staged": str(state.staged.path),
            "bytes": brain.snapshot.size,
            "checksum": state.staged.checksum,
            "seconds": round(self._clock() - began, 2),
        }

    def _swap_brain(self, state: RunState) -> dict[str, Any]:
        brain = state.plan.brain
        assert brain is not None and state.staged is not None
        again = state.swapped is not None  # a resumed run whose swap had begun
        if not again:
            self._refuse_held_brain(brain.path, state.target.service)
            state.swapped = prepare_swap(brain.path, state.staged, forensic_dir(brain.path, state.run_id))
            swapped = state.swapped
            self._writes.note_now(
                state,
                EventKind.BRAIN_SWAP,
                {
                    "brain": str(brain.path),
                    "forensic_dir": str(swapped.forensic_dir),
                    "original_inode": swapped.original_inode,
                    "staged_inode": swapped.staged_inode,
                },
            )
        assert state.swapped is not None
        found = brain_in_place(brain.path, state.swapped.original_inode, state.swapped.staged_inode)
        if found in ("missing", "other"):
            raise StepFailed(
                f"{brain.path} is {'missing' if found == 'missing' else 'neither the original nor the snapshot'}"
                f"; the original brain is in {state.swapped.forensic_dir}"
            )
        state.swapped = swap(brain.path, state.staged, state.swapped)
        return {
            "forensic_dir": str(state.swapped.forensic_dir),
            "moved_aside": list(state.swapped.moved_aside),
            "forensic_holds": brain.loss.describe() if brain.loss else None,
        }

    def _refuse_held_brain(self, brain: Path, service: str) -> None:
        """The last look before the brain is moved: with the Engine stopped, nothing may hold it.
        A holder fails the step before anything is renamed, so the run's recovery starts the
        previous version again on the untouched brain, and the holder's writes stay in it."""
        holders = holders_after_stop(brain, self._docker)
        if holders:
            raise StepFailed(
                f"the brain is still held with {service} stopped: {describe_holders(holders)}; "
                "it was not swapped, so no write of it is lost. Stop it, then run the rollback again"
            )

    def _set_image_tag(self, state: RunState) -> dict[str, Any]:
        """The file that decides the image (the compose file or override preflight named, or the
        `.env` its tag comes from) is backed up before it is touched, and an earlier attempt's
        backup (a resumed run) is kept: it is the only copy of the file as it was before the run."""
        site = image_site(state)
        backup = backup_path(self._evidence_dir, state)
        if not backup.is_file():
            run_folder(self._evidence_dir, state.run_id)
            write_atomically(backup, site.path.read_text(encoding="utf-8"))
        before = backup.read_text(encoding="utf-8")
        edit = set_tag(site, state.target.service, state.plan.request.version)
        old_image = image_in(site, before, state.target.service)
        state.edit = replace(edit, before_text=before, old_image=old_image)
        return {"file": str(site.path), "from": old_image, "to": edit.new_image, "backup": str(backup)}

    def _pull(self, state: RunState) -> dict[str, Any]:
        output = state.compose.pull(state.target.service)
        return {"output": output[-500:]}

    def _snapshot_brain(self, state: RunState) -> dict[str, Any]:
        """An upgrade's pre-upgrade snapshot, taken while the version it replaces still runs: its
        sidecar names that version and the upgrade, so a later rollback finds it by itself. When
        that version answers healthy now, it is recorded as seen healthy on the brain's schema:
        the previous good version to go back to."""
        brain = state.target.brain
        assert brain is not None
        running = state.plan.running_version
        upgrade = (state.run_id, state.plan.request.version)
        with brain_lock(brain.path, f"the pre-upgrade snapshot of run {state.run_id}"):
            snapshot = take_snapshot(brain, running, upgrade=upgrade)
        healthy = self._health.wait_until_healthy(state.target.health_url, timeout=2).ok
        if healthy:
            self._on_healthy(state.target, running or "")
        return {
            "snapshot": str(snapshot.path),
            "schema": snapshot.schema_version,
            "bytes": snapshot.size,
            "taken_at": snapshot.taken_at.isoformat(),
            "running_version": running,
            "healthy_before": healthy,
        }

    def _stop(self, state: RunState) -> dict[str, Any]:
        began = self._clock()
        if state.stop_started_at is None:  # a stop that began before a restart counts from then
            state.stop_started = began
        state.past_stop = True
        state.marks["stop"] = datetime.now(UTC)
        state.compose.stop(state.target.service, state.target.drain_timeout)
        return {"drain_timeout": state.target.drain_timeout, "seconds": round(self._clock() - began, 2)}

    def _start(self, state: RunState) -> dict[str, Any]:
        state.marks["start"] = datetime.now(UTC)
        state.compose.up(state.target.service)
        # When the new version started: an upgrade's soak and the next `check` count from here.
        return {"image": state.plan.target_image, "started_at": state.marks["start"].isoformat()}

    def _verify_health(self, state: RunState) -> dict[str, Any]:
        result = self._health.wait_until_healthy(state.target.health_url, state.target.health_timeout)
        state.health = result
        detail = {
            "ok": result.ok,
            "status_code": result.status_code,
            "attempts": result.attempts,
            "seconds": round(result.seconds, 2),
            "body": result.body,
            "error": result.error,
        }
        if not result.ok:
            raise StepFailed(f"{state.target.health_url} {result.describe()}")
        self._on_healthy(state.target, state.plan.request.version)
        if state.stop_started is not None:
            state.downtime = self._clock() - state.stop_started
        elif state.stop_started_at is not None:
            state.downtime = (datetime.now(UTC) - state.stop_started_at).total_seconds()
        if state.target.soak > 0:
            state.soak = self._soak.wait(state.target, state.plan.judgement, self._countdown(state))
            detail.update(soak=state.soak.text, recovered=state.soak.recovered)
        state.marks["all-clear" if state.soak is None or state.soak.recovered else "errors persist"] = datetime.now(UTC)
        detail.update(self._window.chart(state))
        return detail

    def _countdown(self, state: RunState) -> Callable[[float], None]:
        """A journal note (and progress) every few seconds of the soak, not every poll: Slack
        rate-limits message updates, and the journal needs no second-by-second record."""
        shown: list[int] = []

        def count(seconds_left: float) -> None:
            step = 5 if state.target.soak >= 20 else 2
            left = round(seconds_left)
            if shown and abs(shown[-1] - left) < step:
                return
            shown.append(left)
            event = self._writes.note_now(
                state, EventKind.SOAK_PROGRESS, {"seconds_left": left, "window": state.target.soak}
            )
            if state.notify is not None:
                state.notify(event)

        return count
