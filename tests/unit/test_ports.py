"""The core depends on ports, not adapters: planning or running must not load Docker, HTTP, Jira,
Slack or rich, so the core stays usable (and fast to import) without the outside world."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE_MODULES = (
    "bot.ports",
    "bot.files",
    "bot.planning.plan",
    "bot.planning.brain_plan",
    "bot.running.runner",
    "bot.core.rollbot",
)
OUTSIDE_LIBRARIES = ("docker", "httpx", "jira", "slack_sdk", "slack_bolt", "rich")
OUTSIDE_LIBRARY_FREE = ("bot.ports", "bot.files")


def test_the_core_imports_no_adapter_library() -> None:
    """A fresh interpreter: what an import loads shows only there, not in pytest's own process."""
    program = (
        f"import sys\nimport {', '.join(CORE_MODULES)}\n"
        f"print(' '.join(name for name in {OUTSIDE_LIBRARIES!r} if name in sys.modules))"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_ports_and_files_import_only_the_standard_library_and_bot() -> None:
    """Every import anywhere in the module (function-local and TYPE_CHECKING ones too), followed
    through the bot modules it reaches."""
    outside = {
        f"{module} imports {imported}"
        for module, imported in _imports_reached(OUTSIDE_LIBRARY_FREE)
        if imported.split(".")[0] not in (*sys.stdlib_module_names, "bot")
    }
    assert outside == set()


def _imports_reached(start: tuple[str, ...]) -> set[tuple[str, str]]:
    seen: set[str] = set()
    found: set[tuple[str, str]] = set()
    pending = list(start)
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        for imported in _imports_of(module):
            found.add((module, imported))
            if imported.split(".")[0] == "bot":
                pending.extend(_bot_modules_named(imported))
    return found


def _imports_of(module: str) -> set[str]:
    path = _source_of(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            origin = ".".join(filter(None, (base, node.module)))
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names if _source_exists(f"{origin}.{alias.name}"))
    return names


def _bot_modules_named(imported: str) -> list[str]:
    """The module and the packages above it: importing `bot.brain.facts` runs `bot/brain/__init__.py` too."""
    parts = imported.split(".")
    return [".".join(parts[:count]) for count in range(1, len(parts) + 1) if _source_exists(".".join(parts[:count]))]


def _source_exists(module: str) -> bool:
    try:
        _source_of(module)
    except FileNotFoundError:
        return False
    return True


def _source_of(module: str) -> Path:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(module)
