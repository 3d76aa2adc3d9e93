"""The runbook's "capture the diagnostic: metrics from the bad window", as files.

The target's error-rate and latency queries are read over a span with range queries and kept
as a CSV (one row per time, one column per series), and drawn as a PNG chart with the upgrade,
the rollback's stop and start and the all-clear (or "errors persist") marked, so the
postmortem shows what users saw and when. The chart is drawn with matplotlib's Agg backend:
no display, no GUI toolkit, safe in a server's worker thread.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

from bot.config import MetricsConfig
from bot.files import write_atomically
from bot.ports import Metrics, Series

POINTS = 240  # a range query's resolution: enough to see a minute's spike in an hour's window


def read_window(metrics: Metrics, config: MetricsConfig, start: datetime, end: datetime) -> dict[str, Series]:
    """Every configured series over [start, end]; raises `MetricsError` when Prometheus cannot answer."""
    step = max((end - start).total_seconds() / POINTS, 1.0)
    queries = {"error rate": config.error_rate_query, "p95 latency seconds": config.latency_query}
    return {
        name: metrics.series(config.prometheus_url, query, start, end, step, timeout=config.timeout_seconds)
        for name, query in queries.items()
        if query is not None
    }


def window_start(upgrade: datetime | None, end: datetime, config: MetricsConfig) -> datetime:
    """From a baseline's length before the upgrade (so the chart shows what normal was)."""
    return (upgrade or end - timedelta(hours=1)) - timedelta(seconds=config.baseline_seconds)


def write_csv(series: Mapping[str, Series], path: Path) -> Path:
    times = sorted({when for points in series.values() for when, _ in points})
    columns = {name: dict(points) for name, points in series.items()}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time_utc", *columns])
    for when in times:
        writer.writerow([when.isoformat(), *(_cell(values.get(when)) for values in columns.values())])
    write_atomically(path, out.getvalue())
    return path


def draw_chart(series: Mapping[str, Series], marks: Mapping[str, datetime], title: str, path: Path) -> Path:
    """Error rate (percent) above p95 latency (ms), sharing the time axis, with the marks as lines."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    axes = figure.subplots(2, 1, sharex=True)
    panels = (("error rate", "error rate (%)", 100.0), ("p95 latency seconds", "p95 latency (ms)", 1000.0))
    for ax, (name, label, scale) in zip(axes, panels, strict=True):
        points = series.get(name, [])
        if points:
            ax.plot([when for when, _ in points], [value * scale for _, value in points], linewidth=1.5)
        else:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", va="center")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        for mark, when in marks.items():
            ax.axvline(when, color=_MARK_COLOURS.get(mark, "grey"), linestyle="--", linewidth=1)
    for mark, when in marks.items():
        axes[0].annotate(mark, (when, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top", fontsize=8)
    axes[0].set_title(title)
    axes[1].set_xlabel("time (UTC)")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    _write_bytes(path, buffer.getvalue())
    return path


_MARK_COLOURS = {"upgrade": "tab:red", "stop": "tab:orange", "start": "tab:blue", "all-clear": "tab:green"}


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _write_bytes(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
