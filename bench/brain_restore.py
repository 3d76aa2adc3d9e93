"""Benchmark of rollbot's brain restore against the runbook's manual `.restore` (issue 3).

Run:  python bench/brain_restore.py [--sizes 20MB,1GB] [--repeats 3]
Needs Docker, Compose v2, the local registry at 127.0.0.1:5000 and the base image
(`bash .ci/setup.sh`). Sizes are decimal (1 MB = 10^6 bytes), and so is every MB/s.

What it measures, all in one run, on this machine:

(a) Downtime of the Engine — the time `/health` does not answer ok, seen by a poller asking
    every 50 ms: from the last ok answer before the outage to the first ok answer after it (the
    longest such gap; any shorter one is listed apart) — during two procedures that restore the
    same brain:
      rollbot  `rollbot rollback engine bench-old --yes` (stage the snapshot while the Engine
               runs, drain-stop, swap the brain by renames, start, verify);
      manual   the runbook's "Brain rollback": edit the compose tag back, `docker compose stop
               engine`, `docker compose run --rm --entrypoint /bin/sh engine -c 'sqlite3
               /data/brain.sqlite ".restore /data/brain-pre-upgrade.db"'`, `docker compose up -d
               engine`, until /health is ok.
    Scenario, rebuilt from the same seed brain before every measurement: a schema-1 brain of the
    given size (the demo Engine's five memory tables) is put in the mounted data folder; the
    healthy image bench-old starts on it; the runbook's brain-pre-upgrade.db is taken (SQLite
    backup API), then `rollbot snapshot engine`; bench-new is deployed (tag edit, up -d) and
    migrates the brain to schema 2; five turns are written (POST /remember). Both images answer
    /health ok and drain for the same ENGINE_DRAIN_SECONDS, so the outage is the procedure's.
    The order of the two procedures alternates between repeats.

(b) Copy throughput, on the rollbot snapshot of each size, 3 rounds in rotating order, median
    (a round of a small file times several copies in a row, so that it spans >= 256 MB):
      cp + fsync         `cp SRC DST`, then an fsync of DST;
      copyfile + fsync   the copy part of bot.brain_swap.stage, exactly as it does it;
      stage()            bot.brain_swap.stage itself: the copy plus a sha256 of the copy plus
                         the integrity check that bot.brain.check_integrity picks for the size.
    And PRAGMA integrity_check against quick_check, for the threshold QUICK_CHECK_ABOVE_BYTES in
    bot/brain.py: on the snapshot (the demo schema has no secondary index) and on a copy of it
    with an index on created_at in each table (what integrity_check cross-checks and quick_check
    skips).

Reading the output: progress goes to stderr; the report goes to stdout. The report has one
table per measurement (every run's figure and the median; for downtimes also what /health
answered meanwhile), where rollbot's and the manual procedure's time goes (step medians from
rollbot's journal and from timing each manual command), and the ratios that issue 3 sets goals
for, each marked PASS or MISS. A ratio of two downtimes is a ratio of medians; a ratio of MB/s
is the inverse ratio of median times. The machine is shared: the header shows the load average
at the start and the end, and figures taken under load are noisier. Everything the benchmark creates (Compose projects, temp
folders) is removed at the end; the two bench images are kept.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this working tree's bot/, never an installed copy

from bench_deploy import NEW, OLD, REPOSITORY, Project, build_images, require_docker  # noqa: E402
from bench_files import (  # noqa: E402
    check_seconds, copy_like_stage, copy_with_cp, indexed_copy, make_brain, run_stage, runbook_snapshot,
    snapshot_of, timed, user_version,
)
from bench_health import POLL_INTERVAL, HealthPoller  # noqa: E402
from bot.brain import QUICK_CHECK_ABOVE_BYTES  # noqa: E402

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
STARTED = time.monotonic()


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


def progress(message: str) -> None:
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)


def parse_size(text: str) -> Size:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B)\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 20MB or 1GB")
    return Size(text.strip(), int(float(match[1]) * UNITS[match[2].upper()]))


def parse_sizes(text: str) -> list[Size]:
    return sorted((parse_size(part) for part in text.split(",") if part.strip()), key=lambda s: s.target)


# --- (a) downtime -------------------------------------------------------------------------------


def prepare(project: Project, seed: Path) -> None:
    """The scenario: seed brain on bench-old, both snapshots, upgrade to bench-new, a few turns."""
    shutil.copyfile(seed, project.brain)
    project.compose("up", "--detach", "engine")
    project.wait_healthy(OLD)
    runbook_snapshot(project.brain, project.runbook_snapshot)  # before rollbot's, so rollbot's is newest
    taken = project.rollbot("snapshot", "engine")
    if taken.returncode:
        raise RuntimeError(f"rollbot snapshot failed: {taken.stdout}{taken.stderr}")
    project.deploy(NEW)
    if user_version(project.brain) != 2:
        raise RuntimeError("bench-new did not migrate the brain to schema 2")
    project.remember(TURNS_AFTER_UPGRADE)


def restore_with_rollbot(project: Project, poller: HealthPoller) -> tuple[dict[str, float], str]:
    began = datetime.now(UTC)
    done = project.rollbot("rollback", "engine", OLD, "--yes", "--reason", "bench: brain restore downtime")
    if done.returncode:
        raise RuntimeError(f"rollbot rollback exited {done.returncode}: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    run = project.last_run()
    steps = {step["name"]: _seconds(step["started_at"], step["finished_at"]) for step in run["steps"]}
    steps = {"start, plan, preflight": _seconds(began.isoformat(), run["steps"][0]["started_at"]), **steps}
    summary = run.get("summary") or {}
    note = f"{summary.get('brain', '?')}; rollbot's own downtime figure {summary.get('downtime_seconds')}s"
    return steps, note


def restore_by_hand(project: Project, poller: HealthPoller) -> tuple[dict[str, float], str]:
    steps = {
        "edit compose tag": timed(lambda: project.set_tag(OLD)),
        "docker compose stop": timed(lambda: project.compose("stop", "engine")),
        "compose run sqlite3 .restore": timed(lambda: project.compose(
            "run", "--rm", "--entrypoint", "/bin/sh", "engine", "-c", RESTORE_COMMAND)),
        "docker compose up -d": timed(lambda: project.compose("up", "--detach", "engine")),
        "until /health ok": timed(poller.wait_recovered),
    }
    return steps, "restored by sqlite3 .restore from brain-pre-upgrade.db"


PROCEDURES: dict[str, Callable[[Project, HealthPoller], tuple[dict[str, float], str]]] = {
    ROLLBOT: restore_with_rollbot,
    MANUAL: restore_by_hand,
}


def measure(project: Project, procedure: str, size: Size) -> Outage:
    with HealthPoller(project.health_url) as poller:
        poller.wait_steady_ok()
        started = time.monotonic()
        steps, note = PROCEDURES[procedure](project, poller)
        poller.wait_recovered()
        wall = time.monotonic() - started
    check_restored(project)
    longest, *others = poller.gaps()
    other_gaps = [f"+{gap.last_ok_before - started:.1f}s: {gap.seconds:.2f}s ({gap.describe()})" for gap in others]
    return Outage(procedure, size.label, longest.seconds, longest.describe(), wall, steps, note, other_gaps)


def check_restored(project: Project) -> None:
    answer = project.wait_healthy(OLD, timeout=10)
    if answer.get("brain_schema") != 1 or user_version(project.brain) != 1:
        raise RuntimeError(f"after the restore the brain is not at schema 1: {answer}")


@contextmanager
def scenario(work: Path, seed: Path) -> Iterator[Project]:
    """A fresh Compose project with the scenario prepared; torn down and deleted afterwards."""
    project = Project.create(work, OLD, DRAIN_SECONDS)
    try:
        prepare(project, seed)
        yield project
    finally:
        project.down()
        shutil.rmtree(project.folder, ignore_errors=True)


def bench_downtime(result: SizeResult, work: Path, seed: Path, repeats: int) -> None:
    for repeat in range(repeats):
        order = (ROLLBOT, MANUAL) if repeat % 2 == 0 else (MANUAL, ROLLBOT)
        for procedure in order:
            progress(f"{result.size.label}: scenario for {procedure} restore, repeat {repeat + 1}/{repeats}")
            with scenario(work, seed) as project:
                keep_snapshot(result, project, work)
                outage = measure(project, procedure, result.size)
            result.outages.append(outage)
            progress(f"{result.size.label}: {procedure} downtime {outage.seconds:.2f}s "
                     f"(procedure {outage.wall:.1f}s)")


def keep_snapshot(result: SizeResult, project: Project, work: Path) -> None:
    """Hard-link the first rollbot snapshot of this size out of the project, for part (b)."""
    kept = snapshot_path(work, result.size)
    if not kept.exists():
        [snapshot] = sorted(project.snapshots.glob("*.sqlite"))
        os.link(snapshot, kept)
        result.snapshot_bytes = kept.stat().st_size


def snapshot_path(work: Path, size: Size) -> Path:
    return work / f"snapshot-{size.label}.sqlite"


# --- (b) copies and checks -----------------------------------------------------------------------


def copies_per_timing(size: int) -> int:
    """Small files are copied several times per timing (each copy with its own fsync) so that one
    timing spans at least COPY_BATCH_BYTES; a 20 MB copy alone lasts about as long as the noise."""
    return max(1, math.ceil(COPY_BATCH_BYTES / max(size, 1)))


def bench_copies(result: SizeResult, work: Path) -> None:
    source = snapshot_path(work, result.size)
    folder = work / "copies"
    folder.mkdir(exist_ok=True)
    brain, copy = folder / "brain.sqlite", folder / "copy.sqlite"
    snapshot = snapshot_of(source)
    methods: dict[str, Callable[[str], None]] = {
        "cp + fsync": lambda _: copy_with_cp(source, copy),
        "copyfile + fsync (stage's copy)": lambda _: copy_like_stage(source, copy),
        "stage() (copy + sha256 + check)": lambda run_id: run_stage(snapshot, brain, run_id),
    }
    names, batch = list(methods), copies_per_timing(result.snapshot_bytes)
    result.copies_per_timing = batch
    for round_ in range(COPY_ROUNDS):
        for name in names[round_ % 3:] + names[: round_ % 3]:
            total = 0.0
            for copy_number in range(batch):
                total += timed(lambda: methods[name](f"bench{round_}-{copy_number}"))
                copy.unlink(missing_ok=True)
            result.copies.setdefault(name, []).append(total / batch)
        progress(f"{result.size.label}: copy round {round_ + 1}/{COPY_ROUNDS} done")
    shutil.rmtree(folder)


def bench_checks(result: SizeResult, work: Path) -> None:
    """integrity_check against quick_check, on the snapshot and on an indexed copy of it."""
    source = snapshot_path(work, result.size)
    indexed = work / f"indexed-{result.size.label}.sqlite"
    indexed_copy(source, indexed)
    result.indexed_bytes = indexed.stat().st_size
    pragmas = ["integrity_check", "quick_check"]
    for variant, path in ((DEMO_SCHEMA, source), (INDEXED, indexed)):
        for round_ in range(CHECK_ROUNDS):
            for pragma in pragmas if round_ % 2 == 0 else pragmas[::-1]:
                result.checks.setdefault((variant, pragma), []).append(check_seconds(path, pragma))
    indexed.unlink()
    progress(f"{result.size.label}: integrity_check / quick_check timed")


# --- one size ------------------------------------------------------------------------------------


def bench_size(size: Size, work: Path, repeats: int) -> SizeResult:
    result = SizeResult(size)
    seed = work / f"seed-{size.label}.sqlite"
    progress(f"{size.label}: generating the seed brain")
    result.rows_per_table = make_brain(seed, size.target)
    result.brain_bytes = seed.stat().st_size
    progress(f"{size.label}: seed brain {result.brain_bytes / MB:.1f} MB, {result.rows_per_table} rows per table")
    bench_downtime(result, work, seed, repeats)
    seed.unlink()
    bench_copies(result, work)
    bench_checks(result, work)
    snapshot_path(work, size).unlink()
    return result


# --- the report ----------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def rule(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}")


def row(*cells: object, widths: tuple[int, ...]) -> None:
    print("  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)).rstrip())


def load_average() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


LOAD_AT_START = load_average()


def report_header(results: list[SizeResult], wall: float) -> None:
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                            capture_output=True, text=True).stdout.strip()
    print(f"rollbot brain restore benchmark — {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"Docker {docker}")
    print(f"images {REPOSITORY}:{OLD} (schema 1) and :{NEW} (schema 2), both healthy; "
          f"ENGINE_DRAIN_SECONDS={DRAIN_SECONDS} for both procedures; /health polled every "
          f"{POLL_INTERVAL * 1000:.0f} ms; whole run {wall / 60:.1f} min; load average (1/5/15 min) "
          f"{LOAD_AT_START} at the start, {load_average()} at the end")
    for result in results:
        print(f"  {result.size.label}: brain {result.brain_bytes / MB:.1f} MB ({result.rows_per_table} rows in each "
              f"of 5 tables), snapshot {result.snapshot_bytes / MB:.1f} MB")


def report_downtime(results: list[SizeResult]) -> None:
    rule("(a) Engine downtime: seconds /health did not answer ok (last ok before → first ok after)")
    widths = (6, 8, 24, 8, 17, 12)
    row("size", "proc.", "each run", "median", "procedure (med.)", "other gaps", widths=widths)
    for result in results:
        for procedure in (ROLLBOT, MANUAL):
            runs = [o for o in result.outages if o.procedure == procedure]
            if runs:
                row(result.size.label, procedure, ", ".join(f"{o.seconds:.2f}" for o in runs),
                    f"{median([o.seconds for o in runs]):.2f}", f"{median([o.wall for o in runs]):.1f}s",
                    ",".join(str(len(o.other_gaps)) for o in runs), widths=widths)
    print("  'procedure' is from the command's start to /health ok again (rollbot's includes its preflight and the")
    print("  staged copy, done while the Engine still serves). The downtime is the longest gap in ok answers;")
    print("  'other gaps' counts shorter ones in each run, listed below with what /health answered:")
    for result in results:
        for outage in result.outages:
            print(f"    {result.size.label} {outage.procedure}: downtime {outage.seconds:.2f}s ({outage.answers})"
                  + "".join(f"; other gap at {gap}" for gap in outage.other_gaps))


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
                print(f"      steps spanning the outage ({', '.join(OUTAGE_STEPS)}) add up to {inside:.2f}; "
                      f"first run: {runs[0].note}")
    print(f"  rollbot's stop step and its own downtime figure include the {DRAIN_SECONDS}s drain, during which")
    print("  /health still answers ok; its verify_health polls once a second. The poller's figure is the outage.")


def report_copies(results: list[SizeResult]) -> None:
    rule(f"(b) Copy of the snapshot beside the brain (median of {COPY_ROUNDS} rounds, rotating order; "
         "MB/s = size / time)")
    widths = (6, 34, 22, 8, 8)
    row("size", "method", "each round (s)", "median", "MB/s", widths=widths)
    for result in results:
        for name, runs in result.copies.items():
            row(result.size.label, name, ", ".join(f"{s:.3f}" for s in runs), f"{median(runs):.3f}",
                f"{result.snapshot_bytes / MB / median(runs):.0f}", widths=widths)
    for result in results:
        if result.copies_per_timing > 1:
            print(f"  {result.size.label}: each round is the mean of {result.copies_per_timing} copies in a row, "
                  "each with its own fsync (one copy alone is within the noise)")
    rule(f"Integrity checks (median of {CHECK_ROUNDS}; bot/brain.py uses quick_check above "
         f"{QUICK_CHECK_ABOVE_BYTES / MB:.0f} MB)")
    widths = (6, 11, 9, 18, 6, 15, 6, 14, 20)
    row("size", "file", "MB", "integrity_check s", "MB/s", "quick_check s", "MB/s", "integrity/quick",
        "check_integrity uses", widths=widths)
    for result in results:
        for variant, size in ((DEMO_SCHEMA, result.snapshot_bytes), (INDEXED, result.indexed_bytes)):
            full, quick = median(result.checks[variant, "integrity_check"]), median(result.checks[variant, "quick_check"])
            uses = "quick_check" if size > QUICK_CHECK_ABOVE_BYTES else "integrity_check"
            row(result.size.label, variant, f"{size / MB:.1f}", f"{full:.3f}", f"{size / MB / full:.0f}",
                f"{quick:.3f}", f"{size / MB / quick:.0f}", f"{full / quick:.2f}x", uses, widths=widths)
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
        goals.append((f"rollbot downtime {large.size.label} / rollbot downtime {small.size.label}",
                      ratio(downtime_median(large, ROLLBOT), downtime_median(small, ROLLBOT)), "<= 1.2"))
    goals.append((f"rollbot downtime {large.size.label} / manual downtime {large.size.label}",
                  ratio(downtime_median(large, ROLLBOT), downtime_median(large, MANUAL)), "<= 0.5"))
    for result in reversed(results):
        goals.append((f"staged copy MB/s / cp MB/s, {result.size.label} (copyfile + fsync)",
                      copy_ratio(result, "copyfile + fsync (stage's copy)"), ">= 0.8"))
    for name, value, goal in goals:
        row(name, "n/a" if value is None else f"{value:.2f}", goal, verdict(value, goal), widths=widths)
    for result in reversed(results):
        row(f"  for reference: full stage() MB/s / cp MB/s, {result.size.label}",
            f"{copy_ratio(result, 'stage() (copy + sha256 + check)'):.2f}", "-", widths=widths)
    manual = ratio(downtime_median(large, MANUAL), downtime_median(small, MANUAL))
    if len(results) > 1 and manual is not None:
        row(f"  for reference: manual downtime {large.size.label} / {small.size.label}", f"{manual:.2f}", "-",
            widths=widths)


def report(results: list[SizeResult], wall: float) -> None:
    report_header(results, wall)
    report_downtime(results)
    report_steps(results)
    report_copies(results)
    report_ratios(results)


# --- main ----------------------------------------------------------------------------------------


def _seconds(start: str, end: str | None) -> float:
    """Between two journal timestamps (ISO 8601; naive ones are UTC, as the journal writes them)."""
    if not end:
        return 0.0
    return (_utc(end) - _utc(start)).total_seconds()


def _utc(text: str) -> datetime:
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("20MB,1GB"),
                        help="brain sizes, comma-separated (default 20MB,1GB); ratios compare the smallest and largest")
    parser.add_argument("--repeats", type=int, default=3,
                        help="measurements of each procedure per size (default 3)")
    return parser.parse_args()


def main() -> None:
    options = arguments()
    require_docker()
    progress(f"building and pushing {REPOSITORY}:{OLD} and :{NEW}")
    build_images()
    work = Path(tempfile.mkdtemp(prefix="rollbot-bench-"))
    try:
        results = [bench_size(size, work, options.repeats) for size in options.sizes]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, time.monotonic() - STARTED)


if __name__ == "__main__":
    main()
