"""Fixtures shared by the unit tests: a fake Docker world and a real journal in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Journal, connect

from .fakes import World, make_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    engine = connect(f"sqlite:///{tmp_path}/j.db")
    yield Journal(engine)
    engine.dispose()
