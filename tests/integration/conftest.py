"""Session set-up for the integration tests: the real daemon must be there, images get built."""

import fcntl
import tempfile
from pathlib import Path

import pytest

from tests.integration.demo import DEMO_VERSIONS, build_demo_images, require_docker


@pytest.fixture(scope="session", autouse=True)
def demo_images() -> None:
    """Docker is required, never optional: its absence fails the run instead of skipping it."""
    try:
        require_docker()
    except RuntimeError as problem:
        pytest.fail(str(problem), pytrace=False)
    # Test workers run in parallel: one builds and pushes at a time, the others find the cache warm.
    with open(Path(tempfile.gettempdir()) / "rollbot-demo-images.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build_demo_images(DEMO_VERSIONS)
