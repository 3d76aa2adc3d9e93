"""Which brain schema a version was seen healthy on: what the next rollback to it relies on.

A rollback to a version must know whether that version can read the brain as it is now; rollbot
learns it by watching (a run's health check, `status`, a snapshot taken while healthy).
"""

from __future__ import annotations

import logging

from bot.brain.facts import schema_version
from bot.config import TargetConfig
from storage import Journal

log = logging.getLogger(__name__)


def saw_healthy(
    journal: Journal, target: TargetConfig, version: str | None, source: str, schema: int | None = None
) -> None:
    """Journal that `version` answered healthy on the brain's schema (read now, or `schema` of a
    copy taken at that moment): the next rollback to it knows whether the brain must go back.
    Best effort: a record never fails what a person asked for."""
    if target.brain is None or not version:
        return
    try:
        if schema is None:
            schema = schema_version(target.brain.path, target.brain.schema_query)
        journal.saw_schema(target.name, version, schema, source)
    except Exception as error:  # noqa: BLE001 - a missing record only means asking later
        log.warning("could not record the brain schema %s ran with: %s", version, error)
