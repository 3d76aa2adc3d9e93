"""A real Prometheus scraping the demo Engine, and the load that gives it something to count.

Each test starts its own Prometheus (Debian's package, installed by `.ci/setup.sh`) on a free
127.0.0.1 port with its own config and data folder, scraping the test's own Engine every
second: tests never share a time series, and stopping one stops nothing of another's.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.integration.demo import BASE_IMAGE, BROKEN, EXAMPLE, HEALTHY, REGISTRY, Deployment, free_port, source_digest

METRICS_REPOSITORY = f"{REGISTRY}/rollbot-test/metrics-engine-{source_digest(EXAMPLE / 'engine' / 'engine.py', EXAMPLE / 'engine' / 'Dockerfile')}"
EARLIER_HEALTHY = "2.3.0"  # a good release before HEALTHY
FLAKY = "2.2.9-flaky"  # healthy /health, half its turns fail: what a rollback may land on
# version: (broken, share of turns failing; None = the build's default)
METRICS_VERSIONS = {EARLIER_HEALTHY: (False, None), HEALTHY: (False, None), BROKEN: (True, None), FLAKY: (False, 0.5)}

# Rate windows short enough for tests that last seconds; the README shows the production ones.
ERROR_RATE = (
    '(sum(rate(engine_http_requests_total{path="/turn",status=~"5.."}[6s])) or vector(0))'
    ' / sum(rate(engine_http_requests_total{path="/turn"}[6s]))'
)
LATENCY = 'histogram_quantile(0.95, sum by (le) (rate(engine_http_request_duration_seconds_bucket{path="/turn"}[6s])))'
FAILED_REQUESTS = 'sum(engine_http_requests_total{path="/turn",status=~"5.."}) or vector(0)'


def metrics_config(prometheus_url: str, soak_seconds: int = 4) -> dict[str, str]:
    """`config_edits` for `deployment()`: the example's target with metrics and short windows."""
    return {
        "    keep_images: 5\n": (
            "    keep_images: 5\n"
            f"    soak_seconds: {soak_seconds}\n"
            "    metrics:\n"
            f"      prometheus_url: {prometheus_url}\n"
            f"      error_rate_query: '{ERROR_RATE}'\n"
            f"      latency_query: '{LATENCY}'\n"
            f"      error_count_query: '{FAILED_REQUESTS}'\n"
            "      baseline_seconds: 10\n"
            "      trend_seconds: 10\n"
        )
    }


def configure(deployed: Deployment, prometheus_url: str, soak_seconds: int = 4) -> None:
    """Give the deployment's rollbot.yaml its metrics, once its Prometheus (and port) are known."""
    text = deployed.config_file.read_text()
    for old, new in metrics_config(prometheus_url, soak_seconds).items():
        assert old in text
        text = text.replace(old, new)
    deployed.config_file.write_text(text)


def build_metrics_images() -> str:
    """Build and push the demo Engine's versions these tests use into a repository named by the
    Engine's source; one test process at a time (the others then find the cache warm)."""
    with open(Path(tempfile.gettempdir()) / "rollbot-metrics-images.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for version, (broken, fail_share) in METRICS_VERSIONS.items():
            tag = f"{METRICS_REPOSITORY}:{version}"
            arguments = [f"ENGINE_VERSION={version}", f"ENGINE_BROKEN={1 if broken else 0}"]
            arguments += [f"ENGINE_FAIL_SHARE={fail_share}"] if fail_share is not None else []
            subprocess.run(
                [
                    "docker",
                    "build",
                    "--quiet",
                    "--build-arg",
                    f"BASE_IMAGE={BASE_IMAGE}",
                    *(item for argument in arguments for item in ("--build-arg", argument)),
                    "--tag",
                    tag,
                    str(EXAMPLE / "engine"),
                ],
                check=True,
                capture_output=True,
                env={**os.environ, "DOCKER_BUILDKIT": "0"},
            )
            subprocess.run(["docker", "push", "--quiet", tag], check=True, capture_output=True)
    return METRICS_REPOSITORY


@contextmanager
def prometheus(folder: Path, engine_port: int) -> Iterator[str]:
    """Prometheus on a free port scraping 127.0.0.1:`engine_port` every second; yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: engine\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{engine_port}']\n"
    )
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"Prometheus did not start: {(folder / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@contextmanager
def load(engine_port: int, per_second: float = 20) -> Iterator[None]:
    """Turns against the Engine from a background thread, as users would send them."""
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(timeout=2) as client:
            while not stop.is_set():
                try:
                    client.get(f"http://127.0.0.1:{engine_port}/turn")
                except httpx.HTTPError:
                    pass  # the Engine is being restarted: users see that too
                stop.wait(1 / per_second)

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(timeout=5)


def wait_for_series(url: str, query: str, timeout: float = 30) -> None:
    """Until Prometheus has scraped enough to answer `query` with a value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=2).json()
        if answer["data"]["result"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus had no value for {query} within {timeout}s")
