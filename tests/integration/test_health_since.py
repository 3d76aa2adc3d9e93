"""Since when /health has failed, on a target whose container has no Docker healthcheck: the
demo Engine's image and compose file define none, so Docker keeps no health log and only
rollbot's own probes, remembered in its journal between commands, can tell."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

from tests.integration.demo import BROKEN, HEALTHY, deployment

SINCE = re.compile(r"not ok since (\d\d:\d\d:\d\d) UTC \(rollbot's probes, first failing in check; ")


def test_check_says_since_when_from_rollbots_own_probes_without_a_docker_healthcheck(tmp_path: Path) -> None:
    with deployment(tmp_path, running=HEALTHY) as deployed:
        attributes = deployed.container().attrs
        assert attributes["Config"].get("Healthcheck") is None and "Health" not in attributes["State"]

        healthy = deployed.rollbot("check", "engine")
        deployed.deploy(BROKEN)
        first = deployed.rollbot("check", "engine")
        time.sleep(2.5)  # the next check's own probe starts seconds later than the first failing one
        later = deployed.rollbot("check", "engine")
        record = deployed.journal().health_record("engine")

    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert record is not None and not record.ok and record.last_ok_at is not None
    assert record.failing_since is not None
    for failing in (first, later):
        assert failing.returncode == 3, failing.stdout + failing.stderr
        found = SINCE.search(failing.stdout)
        assert found is not None, failing.stdout
        assert found.group(1) == f"{record.failing_since:%H:%M:%S}", "the first failing probe, not the newest"
        assert f"rollbot's last ok probe {record.last_ok_at:%H:%M:%S} UTC)" in failing.stdout
        assert re.match(rf"Roll back to \S+: /health is not ok since {found.group(1)} UTC", failing.stdout)
    assert record.probed_at - record.failing_since >= timedelta(seconds=2), "kept from the first failing probe"
