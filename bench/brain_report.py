"""Data and report of bench/brain_restore.py: what one size's measurements hold, and how the
figures, ratios and goals are printed. Split from the runner so each file is one idea."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import datetime

from bot.brain.facts import QUICK_CHECK_ABOVE_BYTES

from bench_deploy import NEW, OLD, REPOSITORY
from bench_health import POLL_INTERVAL

MB = 1_000_000
DRAIN_SECONDS = 0.5
TURNS_AFTER_UPGRADE = 5
COPY_ROUNDS = 3
COPY_BATCH_BYTES = 256 * MB
CHECK_ROUNDS = 3
ROLLBOT, MANUAL = "rollbot", "manual"
DEMO_SCHEMA, INDEXED = "snapshot", "+ indexes"
RESTORE_COMMAND = 'sqlite3 /data/brain.sqlite ".restore /data/brain-pre-upgrade.db"'
OUTAGE_STEPS = ("stop", "swap_brain", "start", "verify_health")
UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


@dataclass(frozen=True)
class Size:
    label: str
    target: int


@dataclass
class Outage:
    """One measured restore: the downtime the poller saw and where the procedure spent its time."""

    procedure: str
    size: str
    seconds: float  # the downtime: the longest gap in ok answers
    answers: str  # what /health answered during it, e.g. "refused x20, timeout x1"
    wall: float  # the whole procedure, from the command's start to /health ok again
    steps: dict[str, float] = field(default_factory=dict)
    note: str = ""
    other_gaps: list[str] = field(default_factory=list)  # shorter gaps, each "+offset: seconds (answers)"


@dataclass
class SizeResult:
    size: Size
    brain_bytes: int = 0
    rows_per_table: int = 0
    snapshot_bytes: int = 0
    outages: list[Outage] = field(default_factory=list)
    copies: dict[str, list[float]] = field(default_factory=dict)  # seconds per copy, one entry per round
    copies_per_timing: int = 1
    indexed_bytes: int = 0
    checks: dict[tuple[str, str], list[float]] = field(default_factory=dict)


def median(values: list[float]) -> float:
    return statistics.median(values)


def rule(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}")


def row(*cells: object, widths: tuple[int, ...]) -> None:
    print("  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=False)).rstrip())


def load_average() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


LOAD_AT_START = load_average()


def report_header(results: list[SizeResult], wall: float) -> None:
    docker = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"rollbot brain restore benchmark — {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"Docker {docker}"
    )
    print(
        f"images {REPOSITORY}:{OLD} (schema 1) and :{NEW} (schema 2), both healthy; "
        f"ENGINE_DRAIN_SECONDS={DRAIN_SECONDS} for both procedures; /health polled every "
        f"{POLL_INTERVAL * 1000:.0f} ms; whole run {wall / 60:.1f} min; load average (1/5/15 min) "
        f"{LOAD_AT_START} at the start, {load_average()} at the end"
    )
    for result in results:
        print(
            f"  {result.size.label}: brain {result.brain_bytes / MB:.1f} MB ({result.rows_per_table} rows in each "
            f"of 5 tables), snapshot {result.snapshot_bytes / MB:.1f} MB"
        )


def report_downtime(results: list[SizeResult]) -> None:
    rule("(a) Engine downtime: seconds /health did not answer ok (last ok before → first ok after)")
    widths = (6, 8, 24, 8, 17, 12)
    row("size", "proc.", "each run", "median", "procedure (med.)", "other gaps", widths=widths)
    for result in results:
        for procedure in (ROLLBOT, MANUAL):
            runs = [o for o in result.outages if o.procedure == procedure]
            if runs:
                row(
                    result.size.label,
                    procedure,
                    ", ".join(f"{o.seconds:.2f}" for o in runs),
                    f"{median([o.seconds for o in runs]):.2f}",
                    f"{median([o.wall for o in runs]):.1f}s",
                    ",".join(str(len(o.other_gaps)) for o in runs),
                    widths=widths,
                )
    print("  'procedure' is from the command's start to /health ok again (rollbot's includes its preflight and the")
    print("  staged copy, done while the Engine still serves). The downtime is the longest gap in ok answers;")
    print("  'other gaps' counts shorter ones in each run, listed below with what /health answered:")
    for result in results:
        for outage in result.outages:
            print(
                f"    {result.size.label} {outage.procedure}: downtime {outage.seconds:.2f}s ({outage.answers})"
                + "".join(f"; other gap at {gap}" for gap in outage.other_gaps)
            )


def report_steps(results: list[SizeResult]) -> None:
    rule("Where the time goes (median seconds per step)")
    for result in results:
        for procedure in (ROLLBOT, MANUAL):
            runs = [o for o in result.outages if o.procedure == procedure]
            if not runs:
                continue
            names = list(runs[0].steps)
            parts = [f"{name} {median([o.steps.get(name, 0.0) for o in runs]):.2f}" for name in names]
            print(f"  {result.size.label} {procedure}: " + "; ".join(parts))
            if procedure == ROLLBOT:
                inside = sum(median([o.steps.get(name, 0.0) for o in runs]) for name in OUTAGE_STEPS)
                print(
                    f"      steps spanning the outage ({', '.join(OUTAGE_STEPS)}) add up to {inside:.2f}; "
                    f"first run: {runs[0].note}"
                )
    print(f"  rollbot's stop step and its own downtime figure include the {DRAIN_SECONDS}s drain, during which")
    print("  /health still answers ok; its verify_health polls once a second. The poller's figure is the outage.")


def report_copies(results: list[SizeResult]) -> None:
    rule(
        f"(b) Copy of the snapshot beside the brain (median of {COPY_ROUNDS} rounds, rotating order; "
        "MB/s = size / time)"
    )
    widths = (6, 34, 22, 8, 8)
    row("size", "method", "each round (s)", "median", "MB/s", widths=widths)
    for result in results:
        for name, runs in result.copies.items():
            row(
                result.size.label,
                name,
                ", ".join(f"{s:.3f}" for s in runs),
                f"{median(runs):.3f}",
                f"{result.snapshot_bytes / MB / median(runs):.0f}",
                widths=widths,
            )
    for result in results:
        if result.copies_per_timing > 1:
            print(
                f"  {result.size.label}: each round is the mean of {result.copies_per_timing} copies in a row, "
                "each with its own fsync (one copy alone is within the noise)"
            )
    rule(
        f"Integrity checks (median of {CHECK_ROUNDS}; bot/brain/facts.py uses quick_check above "
        f"{QUICK_CHECK_ABOVE_BYTES / MB:.0f} MB)"
    )
    widths = (6, 11, 9, 18, 6, 15, 6, 14, 20)
    row(
        "size",
        "file",
        "MB",
        "integrity_check s",
        "MB/s",
        "quick_check s",
        "MB/s",
        "integrity/quick",
        "check_integrity uses",
        widths=widths,
    )
    for result in results:
        for variant, size in ((DEMO_SCHEMA, result.snapshot_bytes), (INDEXED, result.indexed_bytes)):
            full, quick = (
                median(result.checks[variant, "integrity_check"]),
                median(result.checks[variant, "quick_check"]),
            )
            uses = "quick_check" if size > QUICK_CHECK_ABOVE_BYTES else "integrity_check"
            row(
                result.size.label,
                variant,
                f"{size / MB:.1f}",
                f"{full:.3f}",
                f"{size / MB / full:.0f}",
                f"{quick:.3f}",
                f"{size / MB / quick:.0f}",
                f"{full / quick:.2f}x",
                uses,
                widths=widths,
            )
    print("  'snapshot' is the demo schema (no secondary index); '+ indexes' is a copy of it with an index on")
    print("  created_at in each memory table — the index cross-checks are what quick_check leaves out")


def downtime_median(result: SizeResult, procedure: str) -> float | None:
    runs = [o.seconds for o in result.outages if o.procedure == procedure]
    return median(runs) if runs else None


def copy_ratio(result: SizeResult, method: str) -> float:
    return median(result.copies["cp + fsync"]) / median(result.copies[method])  # MB/s ratio = inverse time ratio


def verdict(value: float | None, goal: str) -> str:
    """PASS or MISS for a goal written as "<= 1.2" or ">= 0.8"; empty when there is no value."""
    if value is None:
        return ""
    limit = float(goal[3:])
    return "PASS" if (value <= limit if goal.startswith("<=") else value >= limit) else "MISS"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def report_ratios(results: list[SizeResult]) -> None:
    rule("Ratios against the goals of issue 3")
    widths = (58, 7, 7, 6)
    row("ratio", "value", "goal", "", widths=widths)
    small, large = results[0], results[-1]
    goals: list[tuple[str, float | None, str]] = []
    if len(results) > 1:
        goals.append(
            (
                f"rollbot downtime {large.size.label} / rollbot downtime {small.size.label}",
                ratio(downtime_median(large, ROLLBOT), downtime_median(small, ROLLBOT)),
                "<= 1.2",
            )
        )
    goals.append(
        (
            f"rollbot downtime {large.size.label} / manual downtime {large.size.label}",
            ratio(downtime_median(large, ROLLBOT), downtime_median(large, MANUAL)),
            "<= 0.5",
        )
    )
    for result in reversed(results):
        goals.append(
            (
                f"staged copy MB/s / cp MB/s, {result.size.label} (copyfile + fsync)",
                copy_ratio(result, "copyfile + fsync (stage's copy)"),
                ">= 0.8",
            )
        )
    for name, value, goal in goals:
        row(name, "n/a" if value is None else f"{value:.2f}", goal, verdict(value, goal), widths=widths)
    for result in reversed(results):
        row(
            f"  for reference: full stage() MB/s / cp MB/s, {result.size.label}",
            f"{copy_ratio(result, 'stage() (copy + sha256 + check)'):.2f}",
            "-",
            widths=widths,
        )
    manual = ratio(downtime_median(large, MANUAL), downtime_median(small, MANUAL))
    if len(results) > 1 and manual is not None:
        row(
            f"  for reference: manual downtime {large.size.label} / {small.size.label}",
            f"{manual:.2f}",
            "-",
            widths=widths,
        )


def report(results: list[SizeResult], wall: float) -> None:
    report_header(results, wall)
    report_downtime(results)
    report_steps(results)
    report_copies(results)
    report_ratios(results)
