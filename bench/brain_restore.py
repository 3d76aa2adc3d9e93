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
      copyfile + fsync   the copy part of bot.brain.swap.stage, exactly as it does it;
      stage()            bot.brain.swap.stage itself: the copy plus a sha256 of the copy plus
                         the integrity check that bot.brain.facts.check_integrity picks for the size.
    And PRAGMA integrity_check against quick_check, for the threshold QUICK_CHECK_ABOVE_BYTES in
    bot/brain/facts.py: on the snapshot (the demo schema has no secondary index) and on a copy of it
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
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this working tree's bot/, never an installed copy


from bench_deploy import NEW, OLD, REPOSITORY, Project, build_images, require_docker  # noqa: E402
from bench_files import (  # noqa: E402
    check_seconds,
    copy_like_stage,
    copy_with_cp,
    indexed_copy,
    make_brain,
    run_stage,
    runbook_snapshot,
    snapshot_of,
    timed,
    user_version,
)
from bench_health import HealthPoller  # noqa: E402
from brain_report import (  # noqa: E402
    CHECK_ROUNDS,
    COPY_BATCH_BYTES,
    COPY_ROUNDS,
    DEMO_SCHEMA,
    DRAIN_SECONDS,
    INDEXED,
    MANUAL,
    MB,
    RESTORE_COMMAND,
    ROLLBOT,
    TURNS_AFTER_UPGRADE,
    UNITS,
    Outage,
    Size,
    SizeResult,
    report,
)

STARTED = time.monotonic()


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
        "compose run sqlite3 .restore": timed(
            lambda: project.compose("run", "--rm", "--entrypoint", "/bin/sh", "engine", "-c", RESTORE_COMMAND)
        ),
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
            progress(f"{result.size.label}: {procedure} downtime {outage.seconds:.2f}s (procedure {outage.wall:.1f}s)")


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
        for name in names[round_ % 3 :] + names[: round_ % 3]:
            total = 0.0
            for copy_number in range(batch):
                total += timed(partial(methods[name], f"bench{round_}-{copy_number}"))
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
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("20MB,1GB"),
        help="brain sizes, comma-separated (default 20MB,1GB); ratios compare the smallest and largest",
    )
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each procedure per size (default 3)")
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
