"""Structured logs: one JSON object per line, with the id of the run a line is about.

A log shipper indexes these without parsing prose, and `run_id` ties every line of a rollback
(the runner's, Docker's, Slack's retries) to its journal entry. The run id travels in a context
variable the runner sets while it executes a run, so no call needs to pass it along.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

CURRENT_RUN: ContextVar[str | None] = ContextVar("rollbot_run_id", default=None)


@contextmanager
def about_run(run_id: str) -> Iterator[None]:
    """Every line logged by this thread inside the block carries `run_id`."""
    token = CURRENT_RUN.set(run_id)
    try:
        yield
    finally:
        CURRENT_RUN.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", None) or CURRENT_RUN.get(),
            "thread": record.threadName,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # as a filter left it (bot.redaction withholds secrets there)
            line["error"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def use_json(level: int = logging.INFO) -> None:
    """Switch the root logger's handlers (whatever filters they carry) to one JSON line per record."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    root.setLevel(level)
