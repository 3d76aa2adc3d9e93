"""One exception tree (every error class of rollbot under `RollbotError`, each drawn in the
docstring of bot/errors.py) and one reporter of unexpected errors for every front end."""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
import re
from pathlib import Path

import pytest

import bot
import bot.errors
import handlers
import storage
from bot.errors import RollbotError, report_unexpected

ROOT = Path(__file__).resolve().parents[2]


def _error_classes() -> dict[str, type[BaseException]]:
    """Every public exception class defined in bot/, handlers/ and storage/."""
    found: dict[str, type[BaseException]] = {}
    for package in (bot, handlers, storage):
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module_info.name.startswith("storage.migrations") or module_info.name.endswith("__main__"):
                continue
            module = importlib.import_module(module_info.name)
            for name, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == module.__name__
                    and not name.startswith("_")
                ):
                    found[f"{module.__name__}.{name}"] = value
    return found


def test_every_error_class_of_rollbot_is_under_the_one_root() -> None:
    classes = _error_classes()
    assert len(classes) >= 10, sorted(classes)
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, RollbotError))
    assert outside == [], f"not under RollbotError: {outside}"


def test_the_tree_in_the_docstring_draws_every_error_class() -> None:
    drawn = set(re.findall(r"[─└├│\s]+([A-Z][A-Za-z]+)\s", bot.errors.__doc__ or ""))
    names = {cls.__name__ for cls in _error_classes().values()}
    assert names - drawn == set(), f"missing from the drawing in bot/errors.py: {sorted(names - drawn)}"


def test_the_drawing_says_where_each_marked_class_lives() -> None:
    """A class marked `(bot/brain/facts)` is defined in that module: the tree is a map, and moves
    must not leave it pointing at the old place."""
    marked = re.findall(r"([A-Z][A-Za-z]+)\s+\(([a-z_/]+)\)", bot.errors.__doc__ or "")
    where = {cls.__name__: module for module, cls in ((n.rpartition(".")[0], c) for n, c in _error_classes().items())}
    assert len(marked) >= 8
    wrong = {name: (path, where.get(name)) for name, path in marked if path.replace("/", ".") != where.get(name)}
    assert wrong == {}


def test_the_reporter_logs_the_trace_under_the_id_it_shows(caplog: pytest.LogCaptureFixture) -> None:
    error = KeyError("secret detail of the bug")
    try:
        raise error
    except KeyError:
        with caplog.at_level(logging.ERROR):
            line = report_unexpected(error, "testing the reporter")
    match = re.fullmatch(r"rollbot hit an unexpected error \(id ([0-9a-f]{8})\); it is logged under that id\.", line)
    assert match, line
    [record] = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert "testing the reporter" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is error
    assert "secret detail" not in line and "\n" not in line


def test_two_reports_get_different_ids() -> None:
    first, second = (report_unexpected(RuntimeError("x"), "twice") for _ in range(2))
    assert first != second


def test_the_front_ends_report_through_the_one_reporter() -> None:
    """The terminal, the Slack listeners and the HTTP server share the reporter: none of them
    makes error ids of its own."""
    for path in ("bot/program.py", "handlers/services.py", "handlers/fallback.py", "handlers/server.py"):
        text = (ROOT / path).read_text()
        assert "report_unexpected(" in text, path
        assert "token_hex" not in text, f"{path} makes its own error ids"
