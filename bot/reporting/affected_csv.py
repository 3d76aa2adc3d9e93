"""The postmortem's list of who was affected: one CSV row per user or conversation whose rows the
restore took out of the live brain (or sent back to the snapshot's values).

The runbook: "you may need to inform affected users or replay important events". The plan
counts them; the ticket carries the names, so whoever writes to those users has the list. It is
read from the two files the run leaves (the forensic copy, exactly the brain the restore
replaced, and the snapshot), by the identifying columns the plan named, so it is the same on
every retry of the ticket and costs the rollback no downtime.
"""

from __future__ import annotations

import csv
from pathlib import Path

from bot.brain.facts import BrainError, LossReport, affected_values
from bot.running.summary import RunSummary
from storage import RunView

CSV_NAME = "affected-users.csv"
HEADER = ("table", "column", "value", "rows")


def write_affected_csv(run: RunView, folder: Path) -> Path | None:
    """`folder/affected-users.csv`, or None when the run restored no brain or names no columns.
    A brain that cannot be read is written into the file rather than failing the ticket."""
    loss = (run.plan.get("brain") or {}).get("loss")
    summary = RunSummary.from_dict(run.summary)
    if not loss or not summary.forensic_copy or not summary.snapshot:
        return None
    columns: dict[str, list[str]] = {}
    for each in LossReport.from_dict(loss).affected:
        columns.setdefault(each.table, []).append(each.column)
    if not columns:
        return None
    path = folder / CSV_NAME
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        try:
            for row in affected_values(Path(summary.forensic_copy), Path(summary.snapshot), columns):
                writer.writerow(row)
        except BrainError as error:
            writer.writerow(("(error)", "", str(error), ""))
    return path
