"""JSON log lines carry the run they are about, set by the runner while it executes."""

from __future__ import annotations

import json
import logging
import threading

from bot.logs import JsonFormatter, about_run


def test_every_line_logged_inside_a_run_carries_its_id_and_others_do_not() -> None:
    formatter = JsonFormatter()
    lines: list[dict[str, object]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(formatter.format(record)))

    log = logging.getLogger("rollbot.test.logs")
    log.addHandler(Collect())
    log.setLevel(logging.INFO)
    try:
        with about_run("20261126-060000-abcdef"):
            log.info("pulling %s", "engine")
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("step failed")
        other = threading.Thread(target=lambda: log.info("another thread, no run"))
        other.start()
        other.join()
        log.warning("after the run")
    finally:
        log.handlers.clear()

    assert [(line["message"], line["run_id"]) for line in lines] == [
        ("pulling engine", "20261126-060000-abcdef"),
        ("step failed", "20261126-060000-abcdef"),
        ("another thread, no run", None),
        ("after the run", None),
    ]
    assert "ValueError: boom" in str(lines[1]["error"]) and lines[1]["level"] == "error"
