"""Fixtures shared by the unit tests: a fake Docker world, a real journal in tmp_path, and
fresh databases of each backend the journal supports, for the storage tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from storage import Journal, connect
from tests.databases import fresh_postgres_database

from .fakes import World, make_world

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    engine = connect(f"sqlite:///{tmp_path}/j.db")
    yield Journal(engine)
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty databases of one backend (SQLite files in tmp_path, or PostgreSQL
    databases dropped after the test); a test that needs several calls it several times."""
    numbers = itertools.count()
    with ExitStack() as cleanup:

        def make() -> str:
            if request.param == "sqlite":
                return f"sqlite:///{tmp_path}/journal-{next(numbers)}.db"
            return cleanup.enter_context(fresh_postgres_database())

        yield make


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    return new_database()
