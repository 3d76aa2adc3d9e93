"""Session set-up for the integration tests: the real daemon must be there, images get built."""

import pytest

from tests.integration.demo import DEMO_VERSIONS, build_demo_images, require_docker


@pytest.fixture(scope="session", autouse=True)
def demo_images() -> None:
    """Docker is required, never optional: its absence fails the run instead of skipping it."""
    try:
        require_docker()
    except RuntimeError as problem:
        pytest.fail(str(problem), pytrace=False)
    build_demo_images(DEMO_VERSIONS)
