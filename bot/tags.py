"""Docker image references: what a version may be, and how a reference splits into repo and tag.

A version typed in a chat window ends up in a compose file and in process arguments, so it is
checked against Docker's own tag grammar before it goes anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def is_valid_tag(version: str) -> bool:
    """True when `version` is a legal Docker tag (and therefore safe as an argument or in YAML)."""
    return TAG_PATTERN.fullmatch(version) is not None


def describe_invalid_tag(version: str) -> str:
    """A one-line reason a version was refused, with the input shown safely and briefly."""
    shown = version if len(version) <= 40 else version[:37] + "..."
    if not version:
        return "the version is empty; give a Docker tag such as 2.3.1"
    if len(version) > 128:
        return f"the version {shown!r} is {len(version)} characters; a Docker tag has at most 128"
    return (
        f"the version {shown!r} is not a Docker tag (letters, digits, '_', '.' and '-', not starting with '.' or '-')"
    )


@dataclass(frozen=True)
class ImageRef:
    """An image reference split at its tag: `127.0.0.1:5000/engine:2.4.0` → repo + tag.

    A reference pinned by digest keeps the digest in `digest`; switching versions drops it,
    because a digest would override the tag we are asked to run.
    """

    repository: str
    tag: str | None
    digest: str | None = None

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        name, _, digest = reference.partition("@")
        last_slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > last_slash:
            return cls(name[:colon], name[colon + 1 :], digest or None)
        return cls(name, None, digest or None)

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.repository, tag, None)

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
