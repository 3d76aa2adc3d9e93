"""The runbook's judgement against a real Prometheus scraping the demo Engine under load.

`rollbot check` must recommend rolling back a broken build and say why, hold for a healthy one,
and name one failed request for what it is; a rollback whose errors outlive health must end
"healthy but errors persist"; with Prometheus down, `check` cannot tell (exit 2) and names what
it could not read, while a rollback still completes on health alone and says so.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from storage import RunStatus
from tests.integration.demo import BROKEN, HEALTHY, deployment, free_port
from tests.integration.engine_metrics import (
    EARLIER_HEALTHY,
    ERROR_RATE,
    FLAKY,
    METRICS_REPOSITORY,
    build_metrics_images,
    configure,
    load,
    prometheus,
    wait_for_series,
)

BASELINE_SECONDS = 11  # a little over the configured 10 s baseline window


@pytest.fixture(scope="module", autouse=True)
def metrics_images() -> None:
    build_metrics_images()


def test_check_recommends_rolling_back_a_broken_build_and_says_why(tmp_path: Path) -> None:
    with (
        deployment(tmp_path, running=HEALTHY, repository=METRICS_REPOSITORY) as deployed,
        prometheus(tmp_path / "prometheus", deployed.port) as url,
        load(deployed.port),
    ):
        configure(deployed, url)
        wait_for_series(url, ERROR_RATE)
        time.sleep(BASELINE_SECONDS)
        deployed.deploy(BROKEN)
        time.sleep(BASELINE_SECONDS)

        done = deployed.rollbot("check", "engine")

    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith(f"Roll back to {HEALTHY}: "), done.stdout
    assert "/health is not ok" in done.stdout
    assert re.search(r"error rate \d+\.\d% vs 0\.0% before 2\.4\.0 \(≥ 2× the baseline\)", done.stdout), done.stdout
    assert re.search(r"p95 latency \d+ ms vs \d+ ms before 2\.4\.0", done.stdout), done.stdout
    assert f"running: {BROKEN}, up since" in done.stdout
    assert re.search(r"rollbot rollback engine \S+", done.stdout)


def test_check_holds_for_a_healthy_build_and_for_one_bad_request(tmp_path: Path) -> None:
    with (
        deployment(tmp_path, running=EARLIER_HEALTHY, repository=METRICS_REPOSITORY) as deployed,
        prometheus(tmp_path / "prometheus", deployed.port) as url,
        load(deployed.port, per_second=5),
    ):
        configure(deployed, url)
        wait_for_series(url, ERROR_RATE)
        time.sleep(BASELINE_SECONDS)
        deployed.deploy(HEALTHY)
        time.sleep(BASELINE_SECONDS)

        healthy = deployed.rollbot("check", "engine")
        assert httpx.get(f"http://127.0.0.1:{deployed.port}/turn?input=bad", timeout=5).status_code == 500
        time.sleep(2.5)  # two scrapes
        one_bad = deployed.rollbot("check", "engine")

    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.startswith("Don't roll back: /health is ok; error rate and latency are within tolerance")
    assert "error rate: 0.0% now, 0.0% baseline" in healthy.stdout

    assert one_bad.returncode == 0, one_bad.stdout + one_bad.stderr
    assert "only 1 failed request(s) since it started: a bad request, not the service" in one_bad.stdout, one_bad.stdout
    assert "don't roll back for one bad request" in one_bad.stdout
    assert "failed requests since 2.3.1 started: 1" in one_bad.stdout


def test_rollback_whose_errors_outlive_health_ends_healthy_but_errors_persist(tmp_path: Path) -> None:
    with (
        deployment(tmp_path, running=HEALTHY, health_timeout=30, repository=METRICS_REPOSITORY) as deployed,
        prometheus(tmp_path / "prometheus", deployed.port) as url,
        load(deployed.port),
    ):
        configure(deployed, url, soak_seconds=3)
        wait_for_series(url, ERROR_RATE)
        time.sleep(BASELINE_SECONDS)
        deployed.deploy(BROKEN)
        time.sleep(6)

        done = deployed.rollbot("rollback", "engine", FLAKY, "--yes", "--reason", "turns failing")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Evidence (the runbook's when to roll back)" in done.stdout
    assert "Roll back to" in done.stdout and "/health is not ok" in done.stdout
    assert f"engine is healthy on {FLAKY} but errors persist (no clean window in" in done.stdout
    assert "error rate" in done.stdout and "above the tolerance 1.0%" in done.stdout
    assert "not an all-clear" in done.stdout
    assert "… all-clear in 3s if health and errors stay recovered" in done.stdout, "the countdown is shown"
    [run] = deployed.runs()
    assert run.status is RunStatus.SUCCEEDED
    assert "above the tolerance" in run.summary["errors_persist"]
    soaked = [event for event in deployed.journal().run(run.id).events if event.kind == "soak.progress"]
    assert soaked and all(event.details["window"] == 3 for event in soaked)


def test_prometheus_down_check_cannot_tell_and_rollback_runs_on_health_alone(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with deployment(tmp_path, running=BROKEN, health_timeout=30, repository=METRICS_REPOSITORY) as deployed:
        configure(deployed, nobody, soak_seconds=2)
        deployed.deploy(HEALTHY)

        check = deployed.rollbot("check", "engine")
        deployed.deploy(BROKEN)
        rollback = deployed.rollbot("rollback", "engine", HEALTHY, "--yes")

    assert check.returncode == 2, check.stdout + check.stderr
    assert check.stdout.startswith("Cannot tell (could not read error rate: Prometheus at " + nobody)
    assert "could not read p95 latency: Prometheus at" in check.stdout
    assert "The runbook says: if you're unsure, roll back" in check.stdout

    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert f"engine is healthy on {HEALTHY}" in rollback.stdout
    assert f"errors not measured (Prometheus at {nobody} did not answer" in rollback.stdout
    assert "judged on health alone" in rollback.stdout
