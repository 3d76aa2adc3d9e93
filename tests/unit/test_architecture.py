"""The layout's rules, checked on the source so that they cannot drift.

The README's map draws the arrows; these tests keep them true: the core never reaches up to a
front end, no two modules need each other, and no module grows past what one reader holds.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "storage")
MAX_LINES = 400

# The two front ends and the program that starts them: the only modules of bot/ that may know
# of Slack or of the terminal's renderer.
FRONT_ENDS = ("bot.program", "bot.terminal")
SLACK_OR_TERMINAL = ("handlers", "slack_sdk", "slack_bolt", "rich")


def modules() -> dict[str, Path]:
    """Every first-party module by dotted name (a package by its own name, not `__init__`)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's revision files are loaded by Alembic, not imported
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported_names(path: Path, name: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """Every module a file imports, wherever the import sits (in a function or TYPE_CHECKING too)."""
    here = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
            yield base, node.lineno


def first_party_edges() -> dict[str, set[str]]:
    """Module → the first-party modules it imports (`from pkg import mod` counts as `pkg.mod`)."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, _ in imported_names(path, name, path.name == "__init__.py"):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each one import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_rules_see_the_whole_tree() -> None:
    known = modules()
    assert {"bot.core.rollbot", "handlers.app", "storage.repository"} <= set(known)
    assert len(known) > 60


def test_no_module_is_longer_than_one_reader_holds() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_the_core_and_storage_never_reach_up_to_a_front_end() -> None:
    wrong = []
    for name, path in modules().items():
        if name.startswith("handlers") or name.startswith(FRONT_ENDS):
            continue
        for target, line in imported_names(path, name, path.name == "__init__.py"):
            if target.split(".")[0] in SLACK_OR_TERMINAL:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert wrong == []


def test_the_two_front_ends_share_only_the_core() -> None:
    """Slack's messages and the terminal's tables draw from the same neutral text, never from each other."""
    wrong = sorted(
        f"{name} → {target}"
        for name, targets in first_party_edges().items()
        if name.startswith("handlers")
        for target in targets
        if target.startswith(FRONT_ENDS)
    )
    assert wrong == []


def test_storage_knows_nothing_of_the_core_but_its_errors() -> None:
    wrong = sorted(
        f"{name} → {target}"
        for name, targets in first_party_edges().items()
        if name.startswith("storage")
        for target in targets
        if target.startswith("bot") and target != "bot.errors"
    )
    assert wrong == []


def test_no_two_modules_import_each_other_even_through_others() -> None:
    assert cycles(first_party_edges()) == []


def readme_map() -> str:
    """The fenced block under the README's "How it is built": the map of the folders."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## How it is built") :]
    return section.split("```")[1]


def test_the_readme_map_names_only_what_exists() -> None:
    named = set(
        re.findall(r"(?<![\w/.])((?:bot|handlers|storage|tests|bench|examples|deploy)(?:/[\w.]+)*/?)", readme_map())
    )
    bare = set(re.findall(r"(?<![\w/])(\w+\.py)\b", readme_map()))  # `errors.py`, `(drill.py)`: somewhere of ours
    ours = {path.name for package in (*PACKAGES, "tests") for path in (ROOT / package).rglob("*.py")}
    missing = sorted(p for p in named if not (ROOT / p).exists()) + sorted(bare - ours)
    assert len(named) > 15
    assert missing == []


def test_the_readme_map_names_every_part_of_bot() -> None:
    text = readme_map()
    parts = [f"bot/{p.name}/" for p in (ROOT / "bot").iterdir() if (p / "__init__.py").exists()]
    parts += [p.name for p in (ROOT / "bot").glob("*.py") if p.stem not in ("__init__", "__main__")]
    assert [part for part in sorted(parts) if part not in text] == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The rule above is only worth its green if the finder can see red."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
