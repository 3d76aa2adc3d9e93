"""The databases the tests run the journal on: SQLite files, and PostgreSQL on 127.0.0.1.

PostgreSQL is found through one variable, `ROLLBOT_TEST_POSTGRES_URL`, whose default is the
cluster `.ci/setup.sh` creates. Each test gets a database of its own, created from scratch and
dropped afterwards, so tests never see each other's rows or schema. A PostgreSQL that does not
answer fails the test that needs it: it is never skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

# The role, password and port `.ci/setup.sh` gives its loopback-only test cluster.
DEFAULT_POSTGRES_URL = "postgresql+psycopg://rollbot:rollbot-test@127.0.0.1:5433/rollbot"


def postgres_url() -> URL:
    return make_url(os.environ.get("ROLLBOT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; its URL, dropped on exit (with its sessions)."""
    server = postgres_url()
    name = f"rollbot_test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        where = server.render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL at {where} does not answer ({error.orig}); run `bash .ci/setup.sh` "
            "or set ROLLBOT_TEST_POSTGRES_URL",
            pytrace=False,
        )
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
