"""Which way a request goes: back to an older version (a rollback) or forward (an upgrade).

The runbook's rollback and its upgrade are not the same act. A rollback leaves a bad version: it
is announced as "Rolling back", files a postmortem and may restore the brain. An upgrade takes a
snapshot of the brain first (so every later rollback has its pre-upgrade snapshot), keeps the
brain for the new version to migrate, and needs no postmortem when it goes well. So a "rollback"
to a version newer than the running one (a fixed 2.4.1 after 2.4.0 was rolled back) is an
upgrade, planned and announced as one; and `rollbot upgrade` to an older version is refused, since
going back is a rollback with its own safeguards.

Versions compare by their numbers (`bot.planning.kept_images.version_key`); a tag without numbers
(`latest`) does not compare, and then the request keeps the direction it was asked in.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.planning.kept_images import version_key
from storage import RunKind, RunView

DIRECTION_CHECK = "direction"


@dataclass(frozen=True)
class Direction:
    """The kind of run a request becomes, the one line the plan shows, and a refusal when the
    request contradicts itself (an upgrade to an older version)."""

    kind: RunKind
    why: str
    refusal: str | None = None

    @property
    def rolls_forward(self) -> bool:
        """A rollback request that turned out to go forward: said so, and announced as an upgrade."""
        return self.kind is RunKind.UPGRADE and self.why.startswith("rolling forward")


def direction(running: str | None, version: str, asked: RunKind) -> Direction:
    """Rollback or upgrade, from the numbers of the running version and the one asked for."""
    mine, theirs = version_key(version), version_key(running)
    comparable = mine is not None and theirs is not None
    newer = comparable and mine > theirs  # type: ignore[operator]
    if asked is RunKind.UPGRADE:
        if comparable and not newer:
            return Direction(
                RunKind.UPGRADE,
                f"{version} is older than the running {running}",
                refusal=(
                    f"{version} is older than the running {running}: going back is a rollback, with its "
                    f"brain checks and postmortem; use `rollbot rollback TARGET {version}` (or `/rollback TARGET {version}`)"
                ),
            )
        return Direction(RunKind.UPGRADE, f"upgrade: {running or '?'} → {version}")
    if newer:
        return Direction(
            RunKind.UPGRADE,
            f"rolling forward: {version} is newer than the running {running}, so this is an upgrade "
            "(a snapshot of the brain first, no postmortem), not a rollback",
        )
    return Direction(RunKind.ROLLBACK, f"rollback: {running or '?'} → {version}")


def restored_brain_note(
    restore: RunView, version: str, reads: int | None, reads_source: str, live_schema: int | None
) -> str:
    """What a roll forward means for the rows an earlier rollback took out of the live brain:
    the fixed version migrates the restored brain again, and the forensic copy's rows can be
    replayed into it only when it reads the schema they were written at."""
    brain = restore.plan.get("brain") or {}
    written_at = brain.get("live_schema")
    tables = [t for t in (brain.get("loss") or {}).get("tables", []) if t.get("rows")]
    forensic = restore.summary.get("forensic_copy") or "its forensic copy"
    rows = ", ".join(f"{t['table']} {t['rows']}" for t in tables) or "no rows"
    total = sum(int(t["rows"]) for t in tables)
    text = (
        f"the brain was restored by run {restore.id} ({restore.from_version} → {restore.to_version}); "
        f"{version} will migrate the restored brain (schema {live_schema}) again. The forensic copy "
        f"{forensic} holds {total} row(s) written at schema {written_at} ({rows})"
    )
    if not tables:
        return text + ": nothing to replay"
    replay = f"`rollbot replay {restore.id} --table TABLE`"
    if reads is None or written_at is None:
        return (
            text + f": whether they can be replayed depends on {version} reading schema {written_at}, which "
            f"rollbot cannot tell yet; after the upgrade try {replay} (it starts with a dry run)"
        )
    if reads >= written_at:
        return (
            text
            + f": they can be replayed after the upgrade with {replay} ({version} reads up to {reads}, {reads_source})"
        )
    return (
        text + f": they cannot be replayed into {version}'s brain: it reads up to schema {reads} ({reads_source}), "
        f"they were written at {written_at}"
    )
