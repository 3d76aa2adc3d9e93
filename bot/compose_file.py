"""Reading and editing the Engine's compose file without disturbing a byte of it but the tag.

The file is a person's file: comments, key order, quoting and indentation are theirs. ruamel's
round-trip loader tells us where the service's `image:` value sits; the edit then replaces
the tag at exactly that place in the original text, and the result is parsed again to prove
that the only thing that changed is the image. Re-emitting the whole document would normalise
indentation styles that ruamel cannot reproduce (e.g. `- ` offsets), which is not "only the tag".
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.errors import ComposeFileError
from bot.tags import ImageRef


@dataclass(frozen=True)
class ComposeEdit:
    """What an edit did, kept for the journal and for putting the file back."""

    path: Path
    before_text: str
    after_text: str
    old_image: str
    new_image: str


def read_service_image(path: Path, service: str) -> ImageRef:
    """The image reference `service` runs according to the compose file."""
    _, image, _ = _locate_image(path, None, service)
    return ImageRef.parse(image)


_PARSED: dict[Path, tuple[tuple[int, int, int], Any]] = {}


def _parsed(path: Path) -> Any:
    """The file parsed, re-parsed only when it changed: every plan reads it, and parsing YAML
    in pure Python is the most CPU a plan spends while requests wait for their ack."""
    try:
        stat = path.stat()
    except OSError:
        return _load(path, _read(path))  # _read names the problem
    version = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    cached = _PARSED.get(path)
    if cached is None or cached[0] != version:
        cached = (version, _load(path, _read(path)))
        _PARSED[path] = cached
    return cached[1]


def service_image_in(path: Path, text: str, service: str) -> str:
    """The service's image as written in `text` (e.g. a backup of `path` from before an edit)."""
    return _locate_image(path, text, service)[1]


def set_service_tag(path: Path, service: str, tag: str) -> ComposeEdit:
    """Point `service` at `tag`, changing nothing else in the file, and write it atomically."""
    before = _read(path)
    document, old_image, (line_no, column) = _locate_image(path, before, service)
    new_image = str(ImageRef.parse(old_image).with_tag(tag))
    lines = before.splitlines(keepends=True)
    line = lines[line_no]
    start = line.find(old_image, column)
    if start < 0 or line[column:start].strip("'\" ") != "":
        raise ComposeFileError(
            f"{path}: the image of service '{service}' is not written on one line as a plain "
            "or quoted value; edit the tag by hand"
        )
    lines[line_no] = line[:start] + new_image + line[start + len(old_image) :]
    after = "".join(lines)
    _prove_only_image_changed(path, document, after, service, new_image)
    write_atomically(path, after)
    return ComposeEdit(path, before, after, old_image, new_image)


def project_name(path: Path) -> str:
    """The Compose project name, by Compose's own rules: COMPOSE_PROJECT_NAME, else the file's
    top-level `name:`, else the folder's name; lower-cased, keeping only [a-z0-9_-]."""
    chosen = os.environ.get("COMPOSE_PROJECT_NAME")
    if not chosen:
        document = _parsed(path)
        named = document.get("name") if isinstance(document, dict) else None
        chosen = str(named) if named else path.resolve().parent.name
    return re.sub(r"[^a-z0-9_-]", "", chosen.lower()).lstrip("_-")


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a crash leaves the old file or the new, never half.

    The temporary file sits beside the target (same filesystem, so the rename is atomic), takes
    over the original's permission bits, and both the file and its folder are fsynced. A
    symlink is followed, so the file it points to is the one replaced.
    """
    path = path.resolve()
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", newline="") as handle:  # keep CRLF files CRLF
            return handle.read()
    except FileNotFoundError:
        raise ComposeFileError(f"{path}: compose file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ComposeFileError(f"{path}: cannot read the compose file: {error}") from None


def _load(path: Path, text: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ComposeFileError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None


def _locate_image(path: Path, text: str | None, service: str) -> tuple[Any, str, tuple[int, int]]:
    """The document, the service's image and where it is written; `text=None` reads the file
    through the parse cache (for looking), a text parses exactly that text (for editing)."""
    document = _parsed(path) if text is None else _load(path, text)
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        raise ComposeFileError(f"{path}: no 'services:' mapping; is this a compose file?")
    body = services.get(service)
    if not isinstance(body, dict):
        known = ", ".join(sorted(str(name) for name in services)) or "none"
        raise ComposeFileError(f"{path}: no service '{service}' (services: {known})")
    image = body.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ComposeFileError(f"{path}: service '{service}' has no 'image:' to switch")
    return document, image, body.lc.value("image")


def _prove_only_image_changed(path: Path, document: Any, after: str, service: str, new_image: str) -> None:
    """Parse the edited text and compare it with the original plus the intended change."""
    expected = _plain(document)
    expected["services"][service]["image"] = new_image
    if _plain(_load(path, after)) != expected:
        raise ComposeFileError(f"{path}: editing the tag in place would change more than the tag; edit it by hand")


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node if node is None or isinstance(node, (bool, int, float)) else str(node)
