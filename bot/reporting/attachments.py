"""A ticket's copy of an evidence file: redacted, and no larger than the cap.

Jira refuses large uploads (413; Data Center's default limit is 10 MB) and a person reads the
first and the last lines of a crash log, not its middle. So a copy over the cap keeps its first
and last parts with the cut marked (the same head-and-tail rule as the log capture), and is
gzipped. Every line passes the redactor first; JSON files are redacted value by value, so they
stay valid JSON.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bot.adapters.log_capture import CappedWriter
from bot.redaction import REDACTED, is_secret_name

Redact = Callable[[str], str]
DEFAULT_ATTACHMENT_CAP_BYTES = 5 * 1024 * 1024
GZIP_ABOVE_BYTES = 1024 * 1024
MARKER_ROOM = 512
_PRIVATE_KEY_BEGIN = "PRIVATE KEY-----"


def attachable(source: Path, folder: Path, redact: Redact, cap_bytes: int) -> Path:
    """Write the ticket's copy of `source` into `folder` (again on every call: the redactor may
    know more now) and return its path: `name`, or `name.gz` when it was cut or is large."""
    target = folder / source.name
    with target.open("wb") as handle:
        writer = CappedWriter(handle, max(cap_bytes - MARKER_ROOM, MARKER_ROOM))  # the cut's marker fits too
        for line in _redacted_lines(source, redact):
            writer.line(line)
        writer.finish()
    cut = source.stat().st_size > cap_bytes or target.stat().st_size > GZIP_ABOVE_BYTES
    packed = folder / f"{source.name}.gz"
    if not cut:
        packed.unlink(missing_ok=True)
        return target
    with target.open("rb") as plain, gzip.open(packed, "wb") as zipped:
        shutil.copyfileobj(plain, zipped)
    target.unlink()
    return packed


def redact_json(value: Any, redact: Redact) -> Any:
    """Every string redacted; the value of a key whose name says secret withheld outright."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if is_secret_name(str(key)) and isinstance(item, (str, int, float)) and item != ""
            else redact_json(item, redact)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_json(item, redact) for item in value]
    return redact(value) if isinstance(value, str) else value


def _redacted_lines(source: Path, redact: Redact) -> Iterator[bytes]:
    if source.suffix == ".json":
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            pass
        else:
            text = json.dumps(redact_json(data, redact), indent=2, default=str) + "\n"
            yield from (line.encode() for line in text.splitlines(keepends=True))
            return
    in_private_key = False
    with source.open("rb") as handle:
        for raw in handle:
            line = raw.decode("utf-8", errors="replace")
            if _PRIVATE_KEY_BEGIN in line and "BEGIN" in line:
                in_private_key = True
            if in_private_key:
                ended = _PRIVATE_KEY_BEGIN in line and "END" in line
                in_private_key = not ended
                yield f"{REDACTED} (private key line)\n".encode()
                continue
            yield redact(line).encode()
