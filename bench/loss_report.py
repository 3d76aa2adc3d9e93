"""Benchmark of bot.brain.facts.loss_report on a large brain: time and peak memory against baselines.

Run:  python bench/loss_report.py [--size 1GB] [--repeats 3]
Needs nothing but this working tree (no Docker). Sizes are decimal (1 GB = 10^9 bytes).

Scenario: a schema-1 brain of the given size (the demo Engine's five memory tables, see
bench_files.py) plus a WITHOUT ROWID table `facts` of about 5% of it; a snapshot of it (SQLite
backup API); then the bad window: 1,000 rows updated and 10 deleted in `episodes`, 1,000 rows
added to each memory table, 500 facts changed, 10 deleted and 500 added.

Measured, each in a fresh Python process (so its peak RSS is its own), rotating the order
between repeats, median of the repeats, with the files in the page cache (each measurement
reads both files whole; a first untimed pass warms the cache):
  loss_report      bot.brain.facts.loss_report (added, changed and deleted rows, per table);
  new keys only    the report before issue 12 (rows whose key the snapshot lacks), the same
                   SQL it ran: the baseline the new report is compared with;
  sha256 x2        bot.brain.facts.sha256 of the live brain and of the snapshot: reading both files
                   once, the floor for any comparison that looks at every row;
  python baseline  an interpreter that imports bot.brain.facts and opens both files, nothing else:
                   the RSS every measurement starts from.
The report prints each figure and the ratios loss_report / new keys only and loss_report /
sha256 x2 (time), and each peak RSS minus the python baseline's (memory that grows with the
brain would show there). Progress goes to stderr, the report to stdout; the files are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this working tree's bot/, never an installed copy

from bench_files import make_brain, runbook_snapshot  # noqa: E402

MB = 1_000_000
UNITS = {"MB": 10**6, "GB": 10**9}
LOSS_REPORT, NEW_KEYS, SHA256, PYTHON = "loss_report", "new keys only", "sha256 x2", "python baseline"

# Each measurement runs as `python -c PROBE kind live snapshot`, prints seconds and peak RSS.
PROBE = r"""
import json, resource, sqlite3, sys, time
from contextlib import closing
from pathlib import Path
from urllib.parse import quote
sys.path.insert(0, sys.argv[4])
from bot.brain.facts import loss_report, readonly, sha256, table_names

def new_keys_only(live, snapshot):
    # The loss report before issue 12: rows of the live brain whose key the snapshot lacks.
    with closing(readonly(live)) as brain:
        brain.execute("ATTACH DATABASE ? AS snap", (f"file:{quote(str(snapshot))}?mode=ro&immutable=1",))
        total = 0
        for table in table_names(brain):
            try:
                brain.execute(f'SELECT rowid FROM main."{table}" LIMIT 0')
                keys = ["rowid"]
            except sqlite3.OperationalError:
                keys = [c[1] for c in brain.execute(f'PRAGMA main.table_info("{table}")') if c[5] > 0]
            columns = [c[1] for c in brain.execute(f'PRAGMA main.table_info("{table}")')]
            span = ", min(m.created_at), max(m.created_at)" if "created_at" in columns else ""
            match = " AND ".join(f"s.{k} IS m.{k}" for k in keys)
            total += brain.execute(f'SELECT count(*){span} FROM main."{table}" AS m WHERE NOT EXISTS '
                                   f'(SELECT 1 FROM snap."{table}" AS s WHERE {match})').fetchone()[0]
        return total

kind, live, snapshot = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
readonly(live).close(); readonly(snapshot, immutable=True).close()
started = time.perf_counter()
if kind == "loss_report":
    result = loss_report(live, snapshot).counts()
elif kind == "new keys only":
    result = f"{new_keys_only(live, snapshot)} added"
elif kind == "sha256 x2":
    result = sha256(live)[:12] + " " + sha256(snapshot)[:12]
else:
    result = ""
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "result": result}))
"""


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    number, unit = text[:-2], text[-2:].upper()
    if unit not in UNITS:
        raise SystemExit(f"--size: a number and MB or GB, e.g. 1GB (got {text!r})")
    return int(float(number) * UNITS[unit])


def add_facts(path: Path, rows: int) -> None:
    """A WITHOUT ROWID table keyed by text, as a social graph or a key-value table would be."""
    with closing(sqlite3.connect(path, isolation_level=None)) as brain:
        brain.execute("PRAGMA synchronous=OFF")
        brain.execute("CREATE TABLE facts (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        brain.execute(
            """INSERT INTO facts WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                         SELECT printf('fact-%09d', i), hex(randomblob(200)) FROM n""",
            (rows,),
        )


def bad_window(path: Path) -> None:
    """What a bad release did after the snapshot: updates, deletes and new rows, in every kind of table."""
    with closing(sqlite3.connect(path, isolation_level=None)) as brain:
        brain.execute("BEGIN")
        brain.execute("UPDATE episodes SET content = 'edited in the bad window' WHERE id <= 1000")
        brain.execute("DELETE FROM episodes WHERE id BETWEEN 1001 AND 1010")
        for table in ("episodes", "knowledge", "social_graph", "conversations", "feedback"):
            brain.execute(f"""INSERT INTO {table} (created_at, content)
                              WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
                              SELECT '2026-11-26T03:00:00', hex(randomblob(240)) FROM n""")
        brain.execute("UPDATE facts SET value = 'changed' WHERE key <= 'fact-000000500'")
        brain.execute("DELETE FROM facts WHERE key > 'fact-000000500' AND key <= 'fact-000000510'")
        brain.execute("""INSERT INTO facts WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
                         SELECT printf('new-%09d', i), 'added' FROM n""")
        brain.execute("COMMIT")
        brain.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def measure(kind: str, live: Path, snapshot: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, kind, str(live), str(snapshot), str(ROOT)], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"measuring {kind} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GB")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    target = parse_size(args.size)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rollbot-loss-bench-") as folder:
        live, snapshot = Path(folder) / "brain.sqlite", Path(folder) / "brain-pre-upgrade.db"
        progress(f"making a {target / MB:.0f} MB brain")
        rows = make_brain(live, int(target * 0.95))
        add_facts(live, max(1, int(target * 0.05 / 450)))
        runbook_snapshot(live, snapshot)
        bad_window(live)
        progress("warming the page cache")
        measure(SHA256, live, snapshot)
        kinds = [LOSS_REPORT, NEW_KEYS, SHA256, PYTHON]
        results: dict[str, list[dict[str, object]]] = {kind: [] for kind in kinds}
        for repeat in range(args.repeats):
            order = kinds[repeat % len(kinds) :] + kinds[: repeat % len(kinds)]
            for kind in order:
                progress(f"repeat {repeat + 1}/{args.repeats}: {kind}")
                results[kind].append(measure(kind, live, snapshot))
        report(results, live.stat().st_size, snapshot.stat().st_size, rows, load_before)


def report(
    results: dict[str, list[dict[str, object]]],
    live_bytes: int,
    snapshot_bytes: int,
    rows: int,
    load_before: tuple[float, float, float],
) -> None:
    def seconds(kind: str) -> float:
        return statistics.median(float(r["seconds"]) for r in results[kind])  # type: ignore[arg-type]

    def rss_mb(kind: str) -> float:
        return max(int(r["rss_kb"]) for r in results[kind]) / 1024  # type: ignore[call-overload]

    load = "/".join(f"{value:.1f}" for value in load_before)
    print(
        f"rollbot loss report benchmark — {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; load average {load} at the start, "
        + "/".join(f"{value:.1f}" for value in os.getloadavg())
        + " at the end"
    )
    print(
        f"live brain {live_bytes / MB:.0f} MB ({rows} rows in each of 5 memory tables, plus facts WITHOUT ROWID), "
        f"snapshot {snapshot_bytes / MB:.0f} MB"
    )
    print(
        f"\n{'measurement':<16}{'each run (s)':<28}{'median s':>9}{'MB/s':>8}{'peak RSS MB':>13}{'over python':>13}  result"
    )
    base = rss_mb(PYTHON)
    for kind, runs in results.items():
        each = ", ".join(f"{float(r['seconds']):.2f}" for r in runs)  # type: ignore[arg-type]
        rate = (live_bytes + snapshot_bytes) / MB / seconds(kind) if kind != PYTHON and seconds(kind) else 0
        print(
            f"{kind:<16}{each:<28}{seconds(kind):>9.2f}{rate:>8.0f}{rss_mb(kind):>13.1f}"
            f"{rss_mb(kind) - base:>13.1f}  {runs[-1]['result']}"
        )
    print(
        f"\nratios (medians): loss_report / new keys only = {seconds(LOSS_REPORT) / seconds(NEW_KEYS):.2f} (time), "
        f"loss_report / sha256 x2 = {seconds(LOSS_REPORT) / seconds(SHA256):.2f} (time), "
        f"loss_report peak RSS / python baseline = {rss_mb(LOSS_REPORT) / base:.2f}"
    )
    print(
        "MB/s counts both files. Peak RSS is the process's ru_maxrss; 'over python' subtracts the interpreter "
        "with bot.brain.facts imported and both files opened."
    )


if __name__ == "__main__":
    main()
