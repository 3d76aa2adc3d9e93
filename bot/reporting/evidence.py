"""The files a postmortem carries: the bad version's logs, the journal, `docker inspect` of
the replaced container (reduced to an allow-list), and the health results — gathered from the
run's evidence folder, and copied for the ticket through the redactor and under a size cap."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bot.redaction import redact_shapes
from bot.reporting.affected_csv import write_affected_csv
from bot.reporting.attachments import DEFAULT_ATTACHMENT_CAP_BYTES, Redact, attachable
from bot.reporting.inspect_view import postmortem_inspect
from bot.running.summary import RunSummary
from storage import RunView


def redacted_inspect(attrs: dict[str, Any]) -> dict[str, Any]:
    """`docker inspect` as it is kept in the evidence folder: the allow-listed view (see
    inspect_view), so the container's secrets never reach rollbot's disk at all."""
    return postmortem_inspect(attrs)


def run_folder(evidence_dir: Path, run_id: str) -> Path:
    """A run's evidence folder, and the folder of all of them, readable by rollbot's user only:
    they hold the bad version's logs and the compose file as it was. Whatever is written
    inside is then out of other users' reach, whatever its own mode."""
    folder = evidence_dir / run_id
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for each in (evidence_dir, folder):
        os.chmod(each, 0o700)
    return folder


def gather(
    run: RunView, evidence_dir: Path, redact: Redact = redact_shapes, cap_bytes: int = DEFAULT_ATTACHMENT_CAP_BYTES
) -> list[Path]:
    """The files a ticket carries: redacted (and capped) copies in the run's `attachments/`
    folder. The originals stay beside it, on rollbot's host, for whoever needs the whole log."""
    folder = run_folder(evidence_dir, run.id)
    originals = [_journal(run, folder), _health(run, folder)]
    capture = next((step for step in run.steps if step.name == "capture_logs"), None)
    if capture is not None and capture.detail.get("log_file"):
        originals.append(Path(capture.detail["log_file"]))
        if capture.detail.get("inspect_file"):
            originals.append(Path(capture.detail["inspect_file"]))
    # The bad window's metrics: the CSV read before the stop (text: redacted and capped like the rest).
    originals += [Path(step.detail["metrics_csv"]) for step in run.steps if step.detail.get("metrics_csv")]
    # Who was affected: the users and conversations whose rows the restore took out of the live brain.
    affected = write_affected_csv(run, folder)
    originals += [affected] if affected is not None else []
    outbox = folder / "attachments"
    outbox.mkdir(mode=0o700, exist_ok=True)
    texts = [attachable(path, outbox, redact, cap_bytes) for path in originals if path.is_file()]
    # The chart drawn after the soak is rollbot's own picture of numbers: attached as it is.
    charts = [Path(step.detail["chart"]) for step in run.steps if step.detail.get("chart")]
    return texts + [path for path in charts if path.is_file()]


def _journal(run: RunView, folder: Path) -> Path:
    path = folder / "journal.json"
    data = {
        "run": {
            key: getattr(run, key)
            for key in (
                "id",
                "kind",
                "target",
                "environment",
                "from_version",
                "to_version",
                "reason",
                "requester",
                "approver",
                "status",
                "created_at",
                "started_at",
                "finished_at",
                "current_step",
                "error",
                "next_action",
                "summary",
            )
        },
        "steps": [vars(step) for step in run.steps],
        "events": [vars(event) for event in run.events],
    }
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def _health(run: RunView, folder: Path) -> Path:
    path = folder / "health.json"
    checks = [
        {"step": step.name, "status": step.status.value, "detail": step.detail, "error": step.error}
        for step in run.steps
        if step.name == "verify_health"
    ]
    path.write_text(
        json.dumps(
            {"health_url_results": checks, "summary": RunSummary.from_dict(run.summary).health}, indent=2, default=str
        )
        + "\n",
        encoding="utf-8",
    )
    return path
