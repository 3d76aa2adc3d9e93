"""What a run left behind, and whether it is still so: the edited compose file and the brain.

An interrupted run holds its target, but a person (or a process rollbot does not know) can still
change the files it works on: put the compose file back by hand, restore a brain. A resume or an
abort acting on what it remembers would then overwrite their work, so each step end journals a
fingerprint of both files (inode and content hash) and a take-up compares them with the files
now. The brain's content is hashed only while the Engine is stopped (after the drain-stop and the
swap): while it runs it writes its brain, and only the inode says which brain is in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.brain.facts import sha256
from storage import EventKind, RunView, StepStatus

# What the step a run died in may itself have changed, so it is not held against the files:
# that step runs again (or is undone) with its own checks (the compose backup, the swap's inodes).
IN_FLIGHT_CHANGES: dict[str, dict[str, str]] = {
    "set_image_tag": {"image_file": "all"},
    "swap_brain": {"brain": "all"},
    "start": {"brain": "content"},  # the Engine began writing its brain
}


def fingerprint(path: Path, content: bool = True) -> dict[str, Any]:
    """The file's identity (inode) and, with `content`, its SHA-256; what cannot be read is said."""
    try:
        facts: dict[str, Any] = {"path": str(path), "inode": path.stat().st_ino}
        if content:
            facts["sha256"] = sha256(path)
    except FileNotFoundError:
        return {"path": str(path), "missing": True}
    except OSError as error:
        return {"path": str(path), "unreadable": str(error)}
    return facts


def left_by(edited: Path, brain: Path | None, brain_quiet: bool) -> dict[str, Any]:
    """The fingerprints a step end journals (`run.left`): the edited file, and the brain if any."""
    files = {"image_file": fingerprint(edited)}
    if brain is not None:
        files["brain"] = fingerprint(brain, content=brain_quiet)
    return {"files": files}


def changes_since(run: RunView) -> list[str]:
    """What differs now from what the run last left, one phrase per file; empty when nothing
    does, or when the run journaled no fingerprints (it predates them)."""
    last = next(
        (
            event.details["left"]
            for event in reversed(run.events)
            if event.kind == EventKind.STEP_FINISHED and "left" in event.details
        ),
        None,
    )
    if last is None:
        return []
    in_flight = next((step.name for step in run.steps if step.status is StepStatus.RUNNING), None)
    exempt = IN_FLIGHT_CHANGES.get(in_flight or "", {})
    changed = []
    for name, then in (last.get("files") or {}).items():
        if exempt.get(name) == "all":
            continue
        if exempt.get(name) == "content":
            then = {key: value for key, value in then.items() if key != "sha256"}
        now = fingerprint(Path(then["path"]), content="sha256" in then)
        difference = _difference(then, now)
        if difference:
            changed.append(difference)
    return changed


def _difference(then: dict[str, Any], now: dict[str, Any]) -> str | None:
    path = then["path"]
    if then.get("missing") or then.get("unreadable"):
        return None if now.get("missing") == then.get("missing") else f"{path} appeared"
    if now.get("missing"):
        return f"{path} is gone"
    if now.get("unreadable"):
        return f"{path} cannot be read now ({now['unreadable']})"
    if now["inode"] != then["inode"]:
        return f"{path} was replaced by another file (inode {then['inode']} → {now['inode']})"
    if "sha256" in then and now.get("sha256") != then["sha256"]:
        return f"{path} was changed (sha256 {then['sha256'][:12]}… → {now['sha256'][:12]}…)"
    return None
