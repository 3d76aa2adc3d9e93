"""The files a postmortem carries: the bad version's logs, the journal, `docker inspect` of
the replaced container (its secrets withheld), and the health results — gathered from the
run's evidence folder."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from bot.running.summary import RunSummary
from storage import RunView

COMPRESS_ABOVE_BYTES = 1024 * 1024


SECRET_NAME_PARTS = {
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "TOKENS",
    "KEY",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "AUTH",
    "PRIVATE",
    "DSN",
    "SALT",
    "COOKIE",
    "SESSION",
}
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")


def redacted_inspect(attrs: dict[str, Any]) -> dict[str, Any]:
    """`docker inspect` of the replaced container, fit to attach to a ticket: the values of its
    environment variables whose names say secret (ENGINE_DB_PASSWORD, API_KEY, ...) and any
    password inside a URL (postgres://user:pw@host) are replaced; the names stay, as evidence."""
    config = attrs.get("Config")
    if not isinstance(config, dict) or not isinstance(config.get("Env"), list):
        return attrs
    env = [_redacted_variable(entry) if isinstance(entry, str) else entry for entry in config["Env"]]
    return {**attrs, "Config": {**config, "Env": env}}


def _redacted_variable(entry: str) -> str:
    name, equals, value = entry.partition("=")
    if set(re.split(r"[^A-Z0-9]+", name.upper())) & SECRET_NAME_PARTS:
        return f"{name}{equals}[redacted]"
    return f"{name}{equals}{URL_PASSWORD.sub(lambda found: found['head'] + '[redacted]@', value)}"


def run_folder(evidence_dir: Path, run_id: str) -> Path:
    """A run's evidence folder, and the folder of all of them, readable by rollbot's user only:
    they hold the bad version's logs and the compose file as it was. Whatever is written
    inside is then out of other users' reach, whatever its own mode."""
    folder = evidence_dir / run_id
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for each in (evidence_dir, folder):
        os.chmod(each, 0o700)
    return folder


def gather(run: RunView, evidence_dir: Path) -> list[Path]:
    folder = run_folder(evidence_dir, run.id)
    files = [_journal(run, folder), _health(run, folder)]
    capture = next((step for step in run.steps if step.name == "capture_logs"), None)
    if capture is not None and capture.detail.get("log_file"):
        files.append(_compressed_if_large(Path(capture.detail["log_file"])))
        if capture.detail.get("inspect_file"):
            files.append(Path(capture.detail["inspect_file"]))
    # The bad window's metrics: the CSV read before the stop, the chart drawn after the soak.
    files += [Path(step.detail[key]) for step in run.steps for key in ("metrics_csv", "chart") if step.detail.get(key)]
    return [path for path in files if path.is_file()]


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


def _compressed_if_large(log: Path) -> Path:
    if not log.is_file() or log.stat().st_size <= COMPRESS_ABOVE_BYTES:
        return log
    packed = log.with_name(log.name + ".gz")
    if not packed.exists():
        with log.open("rb") as source, gzip.open(packed, "wb") as target:
            shutil.copyfileobj(source, target)
    return packed
