"""Refusals touch nothing: same compose bytes, same container, exit 2, one line saying why."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import RunStatus
from tests.integration.demo import BROKEN, Deployment, deployment, non_empty_lines


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(tmp_path_factory.mktemp("refusals"), running=BROKEN) as deployed:
        yield deployed


CASES = {
    "unknown target": (["payments", "2.3.1"], "unknown target 'payments'"),
    "shell metacharacters": (["engine", "2.3.1;rm -rf /"], "is not a Docker tag"),
    "path traversal": (["engine", "../x"], "is not a Docker tag"),
    "empty version": (["engine", ""], "the version is empty"),
    "200 characters": (["engine", "a" * 200], "is 200 characters"),
    "version already running": (["engine", BROKEN], f"already runs {BROKEN}"),
    "image exists nowhere": (["engine", "9.9.9"], "keep at least the last 5 versions"),
}


@pytest.mark.parametrize("arguments, reason", CASES.values(), ids=CASES.keys())
def test_refusal_touches_nothing(deployed: Deployment, arguments: list[str], reason: str) -> None:
    compose_before = deployed.compose_file.read_bytes()
    container_before = deployed.container()

    done = deployed.rollbot("rollback", *arguments, "--yes")

    assert done.returncode == 2, done.stdout + done.stderr
    [line] = non_empty_lines(done.stderr)
    assert line.startswith("refused: ") and reason in line, line
    assert "Traceback" not in done.stdout + done.stderr
    assert deployed.compose_file.read_bytes() == compose_before
    container_after = deployed.container()
    assert container_after.id == container_before.id
    assert container_after.attrs["State"]["StartedAt"] == container_before.attrs["State"]["StartedAt"]
    assert container_after.attrs["State"]["Running"]
    newest = deployed.runs()[0]
    assert newest.status is RunStatus.REFUSED and reason in (newest.error or "")


def test_refusals_are_listed_in_history(deployed: Deployment, tmp_path: Path) -> None:
    done = deployed.rollbot("rollback", "engine", "9.9.9", "--yes")
    assert done.returncode == 2
    history = deployed.rollbot("history", "engine")
    assert history.returncode == 0, history.stderr
    assert "refused" in history.stdout and "9.9.9" in history.stdout
