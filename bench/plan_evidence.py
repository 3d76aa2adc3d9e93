"""What the evidence block costs a plan: plan latency with it against a baseline without it.

Every plan gathers the runbook's evidence (bot/core/checking.py): a short /health probe,
Docker's health log, the error rate and p95 latency from Prometheus (now, the baseline window,
the trend: three queries each, and the failed requests since the start) and the regression
eval. Plans run after Slack's ack (handlers/commands.py, checks.py, actions.py hand them to the
core's executor), so the evidence never delays the ack; it delays the plan message, and it holds
one of the core's worker threads while it waits.

Run:  python bench/plan_evidence.py [--plans 8] [--slow 2,8] [--slow-plans 2]
Needs Docker with Compose v2, the registry at 127.0.0.1:5000 and Debian's `prometheus`
(`bash .ci/setup.sh` starts and installs them).

Scenario: the demo Engine (its metrics build) on 2.3.1 under 20 turns a second, scraped every
second by a real Prometheus of its own, then upgraded to the broken 2.4.0: the moment plans are
made. Plans of a rollback to 2.3.1 are then made in this process through the `Rollbot` façade
(real Compose, Docker SDK, registry, SQLite journal), the kinds interleaved, rotating the order
each round, each plan then cancelled:
  no evidence        the plan without its evidence block (the façade built without it): the baseline
  health only        + the evidence on health alone (/health probe, Docker's health log)
  full evidence      + error rate and latency from the real Prometheus, failed requests, and a
                     regression eval command (`true`: rollbot's own cost; a real eval costs its own)
  slow Prometheus Ns the full evidence against a local server speaking Prometheus's query API that
                     answers every query after N seconds: does the plan wait, and for how long?
Printed: each kind's plans (median, min, max), the evidence alone (median), the ratios to the
baseline, and for the slow kinds what the plan's evidence says about the metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this working tree's bot/, never an installed copy

from bot.core.rollbot import Rollbot  # noqa: E402
from bot.planning.plan import RollbackRequest  # noqa: E402
from bot.wiring import build_rollbot  # noqa: E402
from tests.integration.demo import BROKEN, HEALTHY, Deployment, deployment, free_port, require_docker  # noqa: E402
from tests.integration.engine_metrics import (  # noqa: E402
    ERROR_RATE,
    METRICS_REPOSITORY,
    build_metrics_images,
    load,
    metrics_config,
    prometheus,
    wait_for_series,
)

BASELINE, HEALTH_ONLY, FULL = "no evidence", "health only", "full evidence"
EVAL = '    regression_eval: ["true"]\n'


class SlowPrometheus(ThreadingHTTPServer):
    """Prometheus's query API on 127.0.0.1 answering each query after `delay` seconds: one
    sample of 0.0 for instant queries, a short flat series for range queries."""

    daemon_threads = True

    def __init__(self, delay: float) -> None:
        self.delay = delay
        super().__init__(("127.0.0.1", free_port()), _SlowAnswer)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # rollbot stopped waiting and closed the connection: that is what is measured


class _SlowAnswer(BaseHTTPRequestHandler):
    server: SlowPrometheus

    def do_GET(self) -> None:
        time.sleep(self.server.delay)
        now = time.time()
        if "/api/v1/query_range" in self.path:
            data = {"resultType": "matrix", "result": [{"metric": {}, "values": [[now - 1, "0"], [now, "0"]]}]}
        else:
            data = {"resultType": "vector", "result": [{"metric": {}, "value": [now, "0"]}]}
        body = json.dumps({"status": "success", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def slow_prometheus(delay: float) -> Iterator[SlowPrometheus]:
    server = SlowPrometheus(delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def rollbot_for(deployed: Deployment, name: str, edits: dict[str, str], evidence: bool = True) -> Rollbot:
    """A `Rollbot` of this process on a config of its own (the deployment's, edited), sharing the journal."""
    text = deployed.config_file.read_text()
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    config_file = deployed.folder / f"rollbot-{name.replace(' ', '-')}.yaml"
    config_file.write_text(text)
    rollbot = build_rollbot(config_file)
    if not evidence:
        rollbot._rollbacks._checking = None  # the plan as it was before the evidence block
    return rollbot


def measure(rollbot: Rollbot) -> tuple[float, list[str]]:
    """One plan of the rollback to HEALTHY, timed; cancelled after, so nothing waits on it."""
    started = time.perf_counter()
    planned = rollbot.plan(RollbackRequest("engine", HEALTHY, "U0BENCH", "bench"))
    seconds = time.perf_counter() - started
    rollbot.cancel(planned.run.id, "U0BENCH", "benchmark")
    judgement = planned.plan.judgement
    return seconds, list(judgement.evidence) if judgement else []


def evidence_alone(rollbot: Rollbot) -> float:
    started = time.perf_counter()
    rollbot._checking.for_plan(rollbot.config.targets["engine"])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=8, help="plans of each fast kind")
    parser.add_argument("--slow", default="2,8", help="seconds the slow Prometheus waits, comma-separated")
    parser.add_argument("--slow-plans", type=int, default=2, help="plans against each slow Prometheus")
    args = parser.parse_args()
    require_docker()
    progress("building the demo Engine's metrics images")
    build_metrics_images()
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="rollbot-evidence-bench-") as folder,
        deployment(Path(folder), running=HEALTHY, repository=METRICS_REPOSITORY) as deployed,
        prometheus(Path(folder) / "prometheus", deployed.port) as url,
        load(deployed.port),
    ):
        os.environ["DATABASE_URL"] = f"sqlite:///{deployed.database}"
        progress("waiting for Prometheus to hold a baseline, then upgrading to the broken build")
        wait_for_series(url, ERROR_RATE)
        time.sleep(11)
        deployed.deploy(BROKEN)
        time.sleep(6)
        with_metrics = metrics_config(url)
        kinds: dict[str, Rollbot] = {
            BASELINE: rollbot_for(deployed, BASELINE, {}, evidence=False),
            HEALTH_ONLY: rollbot_for(deployed, HEALTH_ONLY, {}),
            FULL: rollbot_for(deployed, FULL, {**with_metrics, "    approvers:": EVAL + "    approvers:"}),
        }
        results = run_rounds(kinds, args.plans)
        slow: dict[str, tuple[list[float], list[str]]] = {}
        for delay in [float(value) for value in args.slow.split(",") if value]:
            with slow_prometheus(delay) as server:
                name = f"slow Prometheus {delay:g}s"
                edits = {**metrics_config(server.url), "    approvers:": EVAL + "    approvers:"}
                rollbot = rollbot_for(deployed, name, edits)
                timed = []
                for index in range(args.slow_plans):
                    progress(f"{name}: plan {index + 1}/{args.slow_plans}")
                    seconds, evidence = measure(rollbot)
                    timed.append(seconds)
                slow[name] = (timed, [line for line in evidence if "Prometheus" in line or "error rate" in line])
                rollbot.shutdown()
        alone = {
            name: statistics.median(evidence_alone(r) for _ in range(3))
            for name, r in kinds.items()
            if name != BASELINE
        }
        for rollbot in kinds.values():
            rollbot.shutdown()
    report(results, alone, slow, load_before, args.plans)


def run_rounds(kinds: dict[str, Rollbot], plans: int) -> dict[str, list[float]]:
    names = list(kinds)
    results: dict[str, list[float]] = {name: [] for name in names}
    measure(kinds[BASELINE])  # warm: imports, the registry's first answers, the compose config cache
    for round_number in range(plans):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in order:
            progress(f"round {round_number + 1}/{plans}: {name}")
            results[name].append(measure(kinds[name])[0])
    return results


def report(
    results: dict[str, list[float]],
    alone: dict[str, float],
    slow: dict[str, tuple[list[float], list[str]]],
    load_before: tuple[float, float, float],
    plans: int,
) -> None:
    load = "/".join(f"{value:.1f}" for value in load_before)
    print(
        f"rollbot plan evidence benchmark — {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {load} at the start, "
        + "/".join(f"{value:.1f}" for value in os.getloadavg())
        + " at the end"
    )
    print(f"the demo Engine on {BROKEN} (broken) under load; {plans} plans of each kind, interleaved\n")
    baseline = statistics.median(results[BASELINE])
    print(f"{'kind':<24}{'median s':>10}{'min s':>8}{'max s':>8}{'evidence alone s':>18}{'× baseline':>12}")
    rows: list[tuple[str, list[float]]] = [*results.items(), *((name, timed) for name, (timed, _) in slow.items())]
    for name, timed in rows:
        middle = statistics.median(timed)
        evidence = f"{alone[name]:.3f}" if name in alone else "-"
        print(f"{name:<24}{middle:>10.3f}{min(timed):>8.3f}{max(timed):>8.3f}{evidence:>18}{middle / baseline:>12.2f}")
    print(
        f"\nthe evidence adds {statistics.median(results[HEALTH_ONLY]) - baseline:+.3f}s on health alone and "
        f"{statistics.median(results[FULL]) - baseline:+.3f}s with Prometheus and the eval (medians)"
    )
    for name, (_, lines) in slow.items():
        print(f"\n{name}: what the plan's evidence says")
        for line in lines:
            print(f"  {line}")


def progress(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
