"""The bad window's metrics, kept as evidence: the CSV before the stop, the chart after the soak.

The series are read before the drain-stop, like the logs, because the runbook wants the bad
window captured while it is still the present; the chart is drawn once the all-clear (or
"errors persist") is known, so it can show the whole story with its marks. Neither may fail a
rollback: a Prometheus that does not answer is written into the step's detail and the run goes on.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import RollbotError
from bot.ports import Metrics
from bot.reporting.bad_window import draw_chart, read_window, window_start, write_csv
from bot.reporting.evidence import run_folder
from bot.running.state import RunState

log = logging.getLogger(__name__)

CSV_NAME, CHART_NAME = "bad-window.csv", "rollback-window.png"


class WindowCapture:
    def __init__(self, metrics: Metrics | None, evidence_dir: Path) -> None:
        self._metrics = metrics
        self._evidence_dir = evidence_dir

    def before_stop(self, state: RunState) -> dict[str, Any]:
        config = state.target.metrics
        if config is None or self._metrics is None:
            return {}
        now = datetime.now(UTC)
        try:
            series = read_window(self._metrics, config, window_start(self._upgrade(state), now, config), now)
        except RollbotError as error:
            return {"metrics_csv": None, "metrics_problem": str(error)}
        path = write_csv(series, run_folder(self._evidence_dir, state.run_id) / CSV_NAME)
        return {"metrics_csv": str(path), "metrics_points": sum(len(points) for points in series.values())}

    def chart(self, state: RunState) -> dict[str, Any]:
        """After the soak: the whole window from before the upgrade to now, marks included."""
        config = state.target.metrics
        if config is None or self._metrics is None:
            return {}
        now = datetime.now(UTC)
        upgrade = self._upgrade(state)
        marks = {**({"upgrade": upgrade} if upgrade else {}), **state.marks}
        try:
            series = read_window(self._metrics, config, window_start(upgrade, now, config), now)
            title = (
                f"{state.target.name}: {state.plan.running_version} → {state.plan.request.version} (run {state.run_id})"
            )
            path = draw_chart(series, marks, title, run_folder(self._evidence_dir, state.run_id) / CHART_NAME)
        except RollbotError as error:
            return {"chart": None, "chart_problem": str(error)}
        except Exception as error:  # a chart must never fail a rollback that succeeded
            log.exception("drawing the chart of run %s failed", state.run_id)
            return {"chart": None, "chart_problem": f"{type(error).__name__}: {error}"}
        return {"chart": str(path)}

    def _upgrade(self, state: RunState) -> datetime | None:
        judgement = state.plan.judgement
        return judgement.running_since if judgement else None
