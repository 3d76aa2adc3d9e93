"""The compose file is a person's file: switching the tag changes that one value and nothing else."""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path

import pytest

from bot.adapters.compose_file import read_service_image, set_service_tag
from bot.errors import ComposeFileError
from bot.tags import ImageRef


def write(tmp_path: Path, text: str, name: str = "docker-compose.yml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def changed_lines(before: bytes, after: bytes) -> list[str]:
    """The removed and added lines of a line diff, with their line endings."""
    diff = difflib.unified_diff(
        before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True), n=0
    )
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def switch(tmp_path: Path, text: str, tag: str = "2.3.1", service: str = "engine") -> list[str]:
    path = write(tmp_path, text)
    set_service_tag(path, service, tag)
    return changed_lines(text.encode(), path.read_bytes())


LAYOUTS = {
    "plain": (
        "# top comment\nservices:\n  engine:\n    # live release\n    image: reg:5000/engine:2.4.0\n    restart: always\n",
        "    image: reg:5000/engine:2.4.0\n",
        "    image: reg:5000/engine:2.3.1\n",
    ),
    "double quotes": (
        'services:\n  engine:\n    image: "reg:5000/engine:2.4.0"\n',
        '    image: "reg:5000/engine:2.4.0"\n',
        '    image: "reg:5000/engine:2.3.1"\n',
    ),
    "single quotes": (
        "services:\n  engine:\n    image: 'reg:5000/engine:2.4.0'\n",
        "    image: 'reg:5000/engine:2.4.0'\n",
        "    image: 'reg:5000/engine:2.3.1'\n",
    ),
    "trailing comment": (
        "services:\n  engine:\n    image: engine:2.4.0   # bumped by CI, was 2.3.1\n",
        "    image: engine:2.4.0   # bumped by CI, was 2.3.1\n",
        "    image: engine:2.3.1   # bumped by CI, was 2.3.1\n",
    ),
    "4-space indent and offset sequences": (
        "services:\n"
        "    engine:\n"
        "        command:\n"
        "            -   serve\n"
        "            -   --port=8080\n"
        "        image:   engine:2.4.0\n"
        "        ports:\n"
        '        - "8080:8080"\n',
        "        image:   engine:2.4.0\n",
        "        image:   engine:2.3.1\n",
    ),
    "flow mapping": (
        "services:\n  engine: {image: engine:2.4.0, restart: always}\n",
        "  engine: {image: engine:2.4.0, restart: always}\n",
        "  engine: {image: engine:2.3.1, restart: always}\n",
    ),
    "no tag yet": (
        "services:\n  engine:\n    image: engine\n",
        "    image: engine\n",
        "    image: engine:2.3.1\n",
    ),
    "pinned by digest": (
        "services:\n  engine:\n    image: engine:2.4.0@sha256:" + "ab" * 32 + "\n",
        "    image: engine:2.4.0@sha256:" + "ab" * 32 + "\n",
        "    image: engine:2.3.1\n",
    ),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_exactly_the_image_line_changes(tmp_path: Path, layout: str) -> None:
    """Comments, quoting and indentation are the person's; only the tag on one line moves."""
    text, old_line, new_line = LAYOUTS[layout]
    assert switch(tmp_path, text) == [f"-{old_line}", f"+{new_line}"]


def test_other_services_with_the_same_image_are_left_alone(tmp_path: Path) -> None:
    """A worker on the same image (and the same text) is not the service asked for."""
    text = (
        "services:\n"
        "  worker:\n"
        "    image: engine:2.4.0\n"
        "  engine:\n"
        "    image: engine:2.4.0\n"
        "    labels:\n"
        "      - engine:2.4.0\n"
    )
    path = write(tmp_path, text)
    set_service_tag(path, "engine", "2.3.1")
    after = path.read_text().splitlines()
    assert after[2] == "    image: engine:2.4.0"
    assert after[4] == "    image: engine:2.3.1"
    assert after[6] == "      - engine:2.4.0"
    assert len(changed_lines(text.encode(), path.read_bytes())) == 2


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    """A compose file saved on Windows keeps its CRLF endings: one line differs, not all of them."""
    text = "services:\r\n  engine:\r\n    # live\r\n    image: engine:2.4.0\r\n    restart: always\r\n"
    assert switch(tmp_path, text) == ["-    image: engine:2.4.0\r\n", "+    image: engine:2.3.1\r\n"]


def test_byte_order_mark_and_missing_final_newline_are_kept(tmp_path: Path) -> None:
    """Bytes outside the tag are not normalised, at the start of the file or at its end."""
    text = "\ufeffservices:\n  engine:\n    image: engine:2.4.0"
    path = write(tmp_path, text)
    set_service_tag(path, "engine", "2.3.1")
    assert path.read_bytes() == "\ufeffservices:\n  engine:\n    image: engine:2.3.1".encode()


def test_the_edit_reports_what_it_did(tmp_path: Path) -> None:
    """The journal and the undo need the text before, the text after, and both images."""
    text = LAYOUTS["plain"][0]
    path = write(tmp_path, text)
    edit = set_service_tag(path, "engine", "2.3.1")
    assert edit.path == path
    assert edit.before_text == text
    assert edit.after_text == path.read_text()
    assert (edit.old_image, edit.new_image) == ("reg:5000/engine:2.4.0", "reg:5000/engine:2.3.1")


def test_file_mode_is_kept(tmp_path: Path) -> None:
    """The atomic replace must not widen or narrow who may read the file."""
    path = write(tmp_path, LAYOUTS["plain"][0])
    os.chmod(path, 0o640)
    set_service_tag(path, "engine", "2.3.1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert "engine:2.3.1" in path.read_text()


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    """The write goes through a temporary file beside the target; it must be gone afterwards."""
    path = write(tmp_path, LAYOUTS["plain"][0])
    set_service_tag(path, "engine", "2.3.1")
    set_service_tag(path, "engine", "2.2.0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docker-compose.yml"]


def test_switching_back_restores_the_original_bytes(tmp_path: Path) -> None:
    """Two edits that cancel out give back the file exactly as it was."""
    text = LAYOUTS["4-space indent and offset sequences"][0]
    path = write(tmp_path, text)
    set_service_tag(path, "engine", "2.3.1")
    set_service_tag(path, "engine", "2.4.0")
    assert path.read_bytes() == text.encode()


REFUSED = {
    "service missing": ("services:\n  worker:\n    image: engine:2.4.0\n", "no service 'engine' (services: worker)"),
    "image missing": ("services:\n  engine:\n    build: .\n", "has no 'image:'"),
    "empty image": ("services:\n  engine:\n    image: ''\n", "has no 'image:'"),
    "not a compose file": ("- just\n- a list\n", "no 'services:' mapping"),
    "empty file": ("", "no 'services:' mapping"),
    "invalid YAML": ("services:\n  engine:\n    image: [engine:2.4.0\n  x: y\n", "not valid YAML at line"),
    "folded scalar": ("services:\n  engine:\n    image: >-\n      engine:2.4.0\n", "edit the tag by hand"),
    "literal scalar": ("services:\n  engine:\n    image: |-\n      engine:2.4.0\n", "edit the tag by hand"),
    "plain scalar over two lines": (
        "services:\n  engine:\n    image: reg/engine\n      :2.4.0\n",
        "edit the tag by hand",
    ),
    "quoted scalar over two lines": (
        'services:\n  engine:\n    image: "reg/engine\n      :2.4.0"\n',
        "edit the tag by hand",
    ),
    "alias": ("x-image: &img engine:2.4.0\nservices:\n  engine:\n    image: *img\n", "edit the tag by hand"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refusals_leave_the_file_byte_identical(tmp_path: Path, case: str) -> None:
    """When the edit cannot be done safely, it is not done at all, and the reason names the file."""
    text, reason = REFUSED[case]
    path = write(tmp_path, text)
    with pytest.raises(ComposeFileError) as caught:
        set_service_tag(path, "engine", "2.3.1")
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in str(caught.value)
    assert path.read_bytes() == text.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docker-compose.yml"]


def test_missing_file_is_a_compose_file_error(tmp_path: Path) -> None:
    """A wrong path in the config is explained, not a FileNotFoundError."""
    path = tmp_path / "gone.yml"
    with pytest.raises(ComposeFileError, match="compose file not found"):
        set_service_tag(path, "engine", "2.3.1")
    with pytest.raises(ComposeFileError, match="compose file not found"):
        read_service_image(path, "engine")
    assert not path.exists()


def test_read_service_image_returns_an_image_ref(tmp_path: Path) -> None:
    """Preflight reads the configured image as repository + tag, quoting removed."""
    path = write(tmp_path, 'services:\n  engine:\n    image: "127.0.0.1:5000/demo/engine:2.4.0"  # live\n')
    assert read_service_image(path, "engine") == ImageRef("127.0.0.1:5000/demo/engine", "2.4.0")


def test_read_service_image_refuses_like_the_edit(tmp_path: Path) -> None:
    """Reading names the same problems the edit would, so preflight catches them first."""
    path = write(tmp_path, "services:\n  worker:\n    image: engine:2.4.0\n")
    with pytest.raises(ComposeFileError, match="no service 'engine'"):
        read_service_image(path, "engine")
