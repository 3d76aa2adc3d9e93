"""Reading and editing the Engine's image tag without disturbing a byte but the tag.

The tag is edited where its value lives: the `image:` line of the compose file that decides it
(the last one in Compose's merge order that sets it), or, for `image: repo:${TAG}`, the `TAG=`
line of the project's `.env`. Anything rollbot cannot edit safely (an image from a YAML merge
key, interpolation beyond the tag, a variable set elsewhere) is found by `image_site` and
`check_tag_edit` at preflight, so it is refused before anything is touched, never mid-run.

The file is a person's file: comments, key order, quoting and indentation are theirs. ruamel's
round-trip loader tells us where the service's `image:` value sits; the edit then replaces
the tag at exactly that place in the original text, and the result is parsed again to prove
that the only thing that changed is the image. Re-emitting the whole document would normalise
indentation styles that ruamel cannot reproduce (e.g. `- ` offsets), which is not "only the tag".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from bot.config import without_secrets
from bot.errors import ComposeFileError
from bot.files import write_atomically
from bot.ports import ServiceConfig
from bot.tags import ImageRef

# `repo:${TAG}`, `repo:$TAG`, `repo:${TAG:-default}`: only the tag interpolated.
TAG_VARIABLE = re.compile(
    r"(?P<repository>[^$]+):\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


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
    edit = _service_tag_edit(path, service, tag)
    write_atomically(path, edit.after_text)
    return edit


def _service_tag_edit(path: Path, service: str, tag: str) -> ComposeEdit:
    """The edit `set_service_tag` would make, proved to change only the image, not written."""
    before = _read(path)
    document, old_image, (line_no, column) = _locate_image(path, before, service)
    new_image = str(ImageRef.parse(old_image).with_tag(tag))
    lines = before.splitlines(keepends=True)
    line = lines[line_no]
    start = line.find(old_image, column)
    if start >= 0 and line[column:start].lstrip().startswith("&"):
        raise ComposeFileError(
            f"{path}: the image of service '{service}' carries a YAML anchor that other places "
            "may use; edit the tag by hand"
        )
    if start < 0 or line[column:start].strip("'\" ") != "":
        raise ComposeFileError(
            f"{path}: the image of service '{service}' is not written on one line as a plain "
            "or quoted value; edit the tag by hand"
        )
    lines[line_no] = line[:start] + new_image + line[start + len(old_image) :]
    after = "".join(lines)
    _prove_only_image_changed(path, document, after, service, new_image)
    return ComposeEdit(path, before, after, old_image, new_image)


@dataclass(frozen=True)
class ImageSite:
    """Where the service's image tag is written: a compose file's `image:` line, or the line
    of `variable` in the project's `.env` when the image reads its tag from it."""

    path: Path
    variable: str | None = None

    def describe(self) -> str:
        return f"{self.variable} in {self.path}" if self.variable else str(self.path)


def image_site(config: ServiceConfig, service: str) -> ImageSite:
    """Which file decides the service's image: the last compose file in merge order that sets it
    (or the `.env` line its `${TAG}` reads). Raises `ComposeFileError` with the reason when the
    tag cannot be edited safely there."""
    for path in reversed(config.files):
        body = _service_body(path, service)
        if body is None or "image" not in body:
            continue
        if "image" not in getattr(body, "_ok", body):  # a key the `<<:` merge brought in
            raise ComposeFileError(
                f"{path}: the image of service '{service}' comes from a YAML merge key (<<); "
                "rollbot edits only an image written on the service itself: edit the tag by hand"
            )
        written = str(body["image"])
        if "$" in written:
            return _variable_site(config, path, written)
        if written != config.image:
            raise ComposeFileError(
                f"{path}: service '{service}' is written as {written} but Compose runs "
                f"{config.image}; rollbot cannot tell where to switch it: edit the tag by hand"
            )
        return ImageSite(path)
    names = ", ".join(path.name for path in config.files)
    raise ComposeFileError(
        f"none of {names} sets the image of service '{service}' on the service itself (extends?); edit the tag by hand"
    )


def check_tag_edit(site: ImageSite, service: str, tag: str) -> ComposeEdit:
    """The edit a run would make, worked out and proved but not written: preflight calls it so
    that an edit rollbot cannot make refuses the plan instead of failing the run."""
    if site.variable:
        return _env_tag_edit(site.path, site.variable, tag)
    return _service_tag_edit(site.path, service, tag)


def set_tag(site: ImageSite, service: str, tag: str) -> ComposeEdit:
    """Switch the tag where `site` says it lives, writing that one file atomically."""
    edit = check_tag_edit(site, service, tag)
    write_atomically(site.path, edit.after_text)
    return edit


def image_in(site: ImageSite, text: str, service: str) -> str:
    """What `text` (e.g. a backup of the site's file) says the image, or the variable, is."""
    if site.variable:
        return f"{site.variable}={_env_value(site.path, text, site.variable)[1]}"
    return service_image_in(site.path, text, service)


def _variable_site(config: ServiceConfig, path: Path, written: str) -> ImageSite:
    match = TAG_VARIABLE.fullmatch(written)
    if match is None:
        raise ComposeFileError(
            f"{path}: the image {written} uses ${{...}} interpolation beyond its tag; "
            "rollbot switches only a literal tag or one `:${TAG}` variable: edit the tag by hand"
        )
    variable = match["braced"] or match["bare"]
    if variable in without_secrets(os.environ):
        raise ComposeFileError(
            f"{path}: the image's tag comes from ${variable}, which rollbot's own environment "
            "sets (it overrides .env): unset it for rollbot or edit the tag by hand"
        )
    if not config.env_file.is_file():
        raise ComposeFileError(
            f"{path}: the image's tag comes from ${variable}, and there is no {config.env_file} "
            "setting it; edit the tag by hand"
        )
    _, value = _env_value(config.env_file, _read(config.env_file), variable)
    if ImageRef.parse(config.image).tag != value:
        raise ComposeFileError(
            f"{config.env_file}: {variable}={value}, but Compose runs {config.image}; "
            "rollbot cannot tell where the tag is set: edit the tag by hand"
        )
    return ImageSite(config.env_file, variable)


_ENV_LINE = r"^(?P<lead>[ \t]*(?:export[ \t]+)?{name}[ \t]*=[ \t]*)(?P<quote>[\"']?)(?P<value>[A-Za-z0-9_][A-Za-z0-9_.-]*)(?P=quote)(?P<rest>[ \t]*(?:#[^\r\n]*)?)(?P<end>\r?\n?)$"


def _env_value(path: Path, text: str, variable: str) -> tuple[int, str]:
    """The one line of `text` that sets `variable` to a plain tag, and that tag."""
    names = re.compile(rf"^[ \t]*(?:export[ \t]+)?{re.escape(variable)}[ \t]*=")
    found = [number for number, line in enumerate(text.splitlines(keepends=True)) if names.match(line)]
    if len(found) != 1:
        where = "is not set" if not found else f"is set on {len(found)} lines"
        raise ComposeFileError(f"{path}: {variable} (the image's tag) {where}; edit the tag by hand")
    line = text.splitlines(keepends=True)[found[0]]
    match = re.fullmatch(_ENV_LINE.format(name=re.escape(variable)), line)
    if match is None:
        raise ComposeFileError(f"{path}: the line of {variable} is not a plain tag value; edit the tag by hand")
    return found[0], match["value"]


def _env_tag_edit(path: Path, variable: str, tag: str) -> ComposeEdit:
    """`.env` with only the value of `variable` changed: every other byte, comments and line
    endings included, stays; proved by comparing line by line."""
    before = _read(path)
    number, old = _env_value(path, before, variable)
    lines = before.splitlines(keepends=True)
    match = re.fullmatch(_ENV_LINE.format(name=re.escape(variable)), lines[number])
    assert match is not None
    lines[number] = f"{match['lead']}{match['quote']}{tag}{match['quote']}{match['rest']}{match['end']}"
    after = "".join(lines)
    changed = [
        n for n, (a, b) in enumerate(zip(before.splitlines(True), after.splitlines(True), strict=False)) if a != b
    ]
    if (
        len(after.splitlines(True)) != len(lines)
        or changed not in ([number], [])
        or _env_value(path, after, variable)[1] != tag
    ):
        raise ComposeFileError(f"{path}: editing {variable} in place would change more than its value; edit it by hand")
    return ComposeEdit(path, before, after, f"{variable}={old}", f"{variable}={tag}")


def _service_body(path: Path, service: str) -> Any:
    document = _parsed(path)
    services = document.get("services") if isinstance(document, dict) else None
    body = services.get(service) if isinstance(services, dict) else None
    return body if isinstance(body, dict) else None


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
    if not isinstance(body, CommentedMap):  # the round-trip loader makes every mapping one
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
